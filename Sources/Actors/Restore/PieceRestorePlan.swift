package import PGCloneStreams

/// What a restore in pieces does with an indexed dump's archive, in pg_restore's own order
/// (`RESTORE_PASS_MAIN` by section, then the ACL pass and the one after it):
/// 1. the schema (pre-data) by pg_restore from the table of contents alone;
/// 2. the tables' data, piece by piece, by pgclone's own COPY sessions (``pieces``), alongside
///    pg_restore for the rest of the data section: sequence values and large objects, whose
///    blocks (``otherFrames``) follow the table of contents on its stdin;
/// 3. indexes, constraints and triggers (post-data) by `pg_restore -j`; then foreign keys, which
///    need the indexes, the same way; then the privileges and what follows them by one more
///    pg_restore (``RestorePasses``).
package struct PieceRestorePlan: Sendable {
    /// A table whose data is loaded in pieces.
    package struct Table: Sendable, Hashable {
        package var dumpID: Int
        /// `"schema"."table"`, quoted as in SQL, for messages: unambiguous whatever the names hold.
        package var name: String
        /// pg_dump's `COPY schema.table (columns) FROM stdin;`, for messages.
        package var copyStatement: String
        /// The same as the archive has it, in the database's encoding: what is sent.
        package var copyStatementBytes: [UInt8]
        /// `TRUNCATE ONLY schema.table` in the database's encoding: empties a table whose COPY
        /// failed in one piece, as a failed COPY leaves a table in pg_restore.
        package var truncateStatement: [UInt8]
    }

    /// One frame of a table's data: rows loaded by one COPY.
    package struct Piece: Sendable, Hashable {
        package var dumpID: Int
        package var startsBlock: Bool
        /// Where it is in the stored object.
        package var stored: Range<Int>
        /// Where it is in the archive.
        package var archive: Range<Int>
    }

    package var tables: [Int: Table]
    /// Every table's pieces, in the archive's order.
    package var pieces: [Piece]
    /// The frames of the other data blocks (large objects), in the archive's order.
    package var otherFrames: [Int]
    /// The statements pg_restore runs first in each session (encoding, string syntax, search path).
    package var setupStatements: [String]
    /// The tables (by their data's dump id) whose rows keep their dumped order, since an index of
    /// theirs wants it (``ArchiveTableOfContents/Entry/wantsRowOrder``): one session loads all
    /// of a table's pieces, one after the other. Sessions loading pieces of one table at once
    /// interleave its pages, which a BRIN index's block ranges and a clustered table's order
    /// (and the planner's `correlation`) would pay for.
    package var tablesInOrder: Set<Int>
    /// Each entry's section and description.
    private var entries: [Int: (section: Int, description: String)]

    /// Why a dump's index cannot drive a restore in pieces; completes "the dump …".
    package struct Unusable: Error, Sendable, CustomStringConvertible {
        package var description: String
    }

    /// The plan for an archive with `contents`, indexed by `index`.
    package static func make(
        index: ArchiveIndex,
        contents: ArchiveTableOfContents
    ) -> Result<PieceRestorePlan, Unusable> {
        var builder = Builder()
        for entry in contents.entries { builder.add(entry) }
        return builder.plan(index: index)
    }

    /// Makes a plan from a table of contents' entries given one at a time, in the archive's order
    /// (``ArchiveTableOfContents/EntryReader``), keeping only what the plan needs of each,
    /// then from the index.
    package struct Builder {
        /// An entry of no section (an ACL, a comment) is in the section of the entry before it
        /// (`ProcessArchiveRestoreOptions`), pre-data at first.
        private var section = ArchiveTableOfContents.preData
        private var tables: [Int: Table] = [:]
        private var otherData: Set<Int> = []
        private var entries: [Int: (section: Int, description: String)] = [:]
        private var setupStatements: [String] = []
        /// Table data's dump id by its table's, and the tables an index wants in order.
        private var dataOfTable: [Int: Int] = [:]
        private var tablesInOrder: Set<Int> = []
        /// The first entry that makes the archive unusable.
        private var unusable: Unusable?

        package init() {}

        package mutating func add(_ entry: ArchiveTableOfContents.Entry) {
            if entry.section != ArchiveTableOfContents.noSection { section = entry.section }
            entries[entry.dumpID] = (section, entry.description)
            if let definition = entry.definition { setupStatements.append(definition) }
            if entry.wantsRowOrder { tablesInOrder.formUnion(entry.dependencies) }
            guard entry.hasData, unusable == nil else { return }
            if entry.description == "TABLE DATA" {
                for table in entry.dependencies { dataOfTable[table] = entry.dumpID }
                guard let statement = entry.copyStatement, statement.hasPrefix("COPY "), let raw = entry.raw,
                    let bytes = raw.copyStatement
                else {
                    unusable = Unusable(description: "holds table data as INSERT statements, not COPY")
                    return
                }
                let name =
                    entry.namespace.isEmpty
                    ? quoteIdentifier(entry.tag) : "\(quoteIdentifier(entry.namespace)).\(quoteIdentifier(entry.tag))"
                tables[entry.dumpID] = Table(
                    dumpID: entry.dumpID,
                    name: name,
                    copyStatement: statement.trimmingWhitespace(),
                    copyStatementBytes: bytes,
                    truncateStatement: Array("TRUNCATE ONLY ".utf8) + PieceRestorePlan.quoted(raw.namespace)
                        + [UInt8(ascii: ".")] + PieceRestorePlan.quoted(raw.tag)
                )
            } else if entry.description == "BLOBS" {
                otherData.insert(entry.dumpID)
            } else {
                unusable = Unusable(description: "holds data of a kind pgclone does not load (\(entry.description))")
            }
        }

        /// The plan, with the pieces `index` gives; or why there can be none.
        package func plan(index: ArchiveIndex) -> Result<PieceRestorePlan, Unusable> {
            if let unusable { return .failure(unusable) }
            var pieces: [Piece] = []
            var otherFrames: [Int] = []
            var previous: Int?
            for number in index.frames.indices.dropFirst() {
                let frame = index.frames[number]
                guard let dumpID = frame.dumpID, frame.startsBlock || previous == dumpID else {
                    return .failure(Unusable(description: "has an index whose pieces are out of order"))
                }
                previous = dumpID
                let (stored, archive) = index.ranges(of: number)
                if tables[dumpID] != nil {
                    pieces.append(
                        Piece(
                            dumpID: dumpID,
                            startsBlock: frame.startsBlock,
                            stored: stored,
                            archive: archive
                        )
                    )
                } else if otherData.contains(dumpID) {
                    otherFrames.append(number)
                } else {
                    return .failure(Unusable(description: "has an index naming dump id \(dumpID), which has no data"))
                }
            }
            // A frame holding the end of one block and the start of the next would load the
            // second's bytes as the first's rows: every block must start a frame of its own.
            let started = Set(index.frames.dropFirst().filter(\.startsBlock).compactMap(\.dumpID))
            if let missing = tables.keys.sorted().first(where: { !started.contains($0) })
                ?? otherData.sorted().first(where: { !started.contains($0) })
            {
                return .failure(
                    Unusable(description: "has an index in which no piece starts the data of dump id \(missing)")
                )
            }
            return .success(
                PieceRestorePlan(
                    tables: tables,
                    pieces: pieces,
                    otherFrames: otherFrames,
                    setupStatements: setupStatements,
                    tablesInOrder: Set(tablesInOrder.compactMap { dataOfTable[$0] }).intersection(tables.keys),
                    entries: entries
                )
            )
        }
    }

    /// `name` as an SQL identifier, in its own encoding: in double quotes, a double quote doubled
    /// (as pg_dump's `fmtId` does; every server encoding leaves `"` alone).
    static func quoted(_ name: [UInt8]) -> [UInt8] {
        let quote = UInt8(ascii: "\"")
        return [quote] + name.flatMap { $0 == quote ? [quote, quote] : [$0] } + [quote]
    }

    /// The `pg_restore -L` lists of the pg_restore runs, from `pg_restore -l`'s `listing`: the
    /// schema; the data section but the tables' data; post-data but foreign keys; and foreign
    /// keys, then the ACL pass's and the last pass's entries of every section (which
    /// ``RestorePasses`` splits off).
    package func lists(listing: String) -> (schema: String, otherData: String, indexes: String, constraints: String) {
        var schema = ""
        var otherData = ""
        var indexes = ""
        var foreignKeys = ""
        var lastPasses = ""
        for line in listing.split(separator: "\n") where !line.hasPrefix(";") {
            guard let end = line.firstIndex(of: ";"), let dumpID = Int(line[..<end]), let entry = entries[dumpID]
            else { continue }
            let text = line + "\n"
            if RestorePasses.isLastPass(line) {
                lastPasses += text
            } else if entry.section == ArchiveTableOfContents.data {
                if entry.description != "TABLE DATA" { otherData += text }
            } else if entry.section == ArchiveTableOfContents.postData {
                if entry.description == "FK CONSTRAINT" { foreignKeys += text } else { indexes += text }
            } else {
                schema += text
            }
        }
        return (schema, otherData, indexes, foreignKeys + lastPasses)
    }
}
