import Foundation
import NIOCore
import PGCloneActors
import PGCloneStreams
import PGCloneTestSupport
import Testing

/// What a restore in pieces makes of pg_dump's archives (pg_dump 15 and 18): each table's pieces
/// unpack into exactly the rows `COPY … TO stdout` gives, and pg_restore's listing splits into the
/// runs pg_restore's own order asks for, every entry in one of them.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "needs PostgreSQL (scripts/test.sh)"))
struct PieceRestorePlanTests {
    static let database = #"""
        CREATE TABLE parent (id int PRIMARY KEY, name text);
        INSERT INTO parent SELECT n, 'row ' || n || E'\twith tab, \\ backslash and\nline break'
            FROM generate_series(1, 20000) AS n;
        INSERT INTO parent VALUES (20001, '\.'), (20002, E'\\.\n'), (20003, NULL);
        CREATE TABLE child (id int REFERENCES parent (id), note text);
        CREATE INDEX child_note ON child (note);
        INSERT INTO child SELECT n, md5(n::text) FROM generate_series(1, 5000) AS n;
        CREATE SEQUENCE s;
        SELECT setval('s', 42);
        SELECT lo_from_bytea(0, decode(repeat(md5('lo'), 20000), 'hex'));
        CREATE MATERIALIZED VIEW mv AS SELECT count(*) FROM child;
        REVOKE ALL ON TABLE child FROM PUBLIC;
        GRANT SELECT ON parent TO PUBLIC;
        """#

    @Test(arguments: PostgresServer.all)
    func piecesHoldTheTablesRowsAndTheListsCoverTheListing(server: PostgresServer) async throws {
        let name = TestEnvironment.uniqueName("plan")
        try await server.createDatabase(name)
        try await server.psql(Self.database, database: name)
        let copied = try await [
            "parent": server.psql("COPY parent TO STDOUT", database: name),
            "child": server.psql("COPY child TO STDOUT", database: name),
        ]
        let bin = server.binDirectory ?? "/usr/lib/postgresql/15/bin"
        let path = FileManager.default.temporaryDirectory.appending(path: "\(name).dump").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let dumped = try await runCommand("\(bin)/pg_dump", ["-Fc", "-Z0", "-f", path, server.url(name)])
        #expect(dumped.exitCode == 0, "\(dumped)")
        let listing = try await runCommand("\(bin)/pg_restore", ["--list", path]).stdout
        try await server.dropDatabase(name)
        let archive = Array(try Data(contentsOf: URL(filePath: path)))
        let stored = try await ArchiveIndexTests.encode(archive, pieceSize: 64 << 10)
        let index = try #require(try ArchiveIndexTests.index(of: stored))
        let contents = try ArchiveTableOfContents(bytes: Array(archive[index.ranges(of: 0).archive]))
        let plan = try PieceRestorePlan.make(index: index, contents: contents).get()
        // A restore reads the entries one at a time (ArchiveTableOfContents.readEntries): the same
        // entries, in the same order, whatever its chunks; cut short, it fails.
        let head = ByteBuffer(bytes: archive[index.ranges(of: 0).archive])
        var read: [ArchiveTableOfContents.Entry] = []
        #expect(try ArchiveTableOfContents.readEntries(of: head) { read.append($0) } == contents.intSize)
        #expect(read == contents.entries)
        read = []
        #expect(try ArchiveTableOfContents.readEntries(of: head, chunkSize: 7) { read.append($0) } == contents.intSize)
        #expect(read == contents.entries)
        #expect(throws: ArchiveFormatError.needMoreBytes) {
            try ArchiveTableOfContents.readEntries(of: head.getSlice(at: 0, length: head.readableBytes - 1)!) { _ in }
        }
        // An index that contradicts the table of contents drives nothing.
        func refusal(_ index: ArchiveIndex) -> String? {
            guard case .failure(let why) = PieceRestorePlan.make(index: index, contents: contents) else { return nil }
            return why.description
        }
        var outOfOrder = index
        outOfOrder.frames[2].dumpID = (outOfOrder.frames[1].dumpID ?? 0) + 1
        outOfOrder.frames[2].startsBlock = false
        #expect(refusal(outOfOrder) == "has an index whose pieces are out of order")
        var noData = index
        noData.frames[1].dumpID = 999_999
        #expect(refusal(noData) == "has an index naming dump id 999999, which has no data")
        // Two blocks in one frame: the second's start is missing.
        var merged = index
        let second = try #require(merged.frames.indices.dropFirst(2).first { merged.frames[$0].startsBlock })
        let secondID = try #require(merged.frames[second].dumpID)
        merged.frames.removeSubrange(
            second..<(merged.frames[(second + 1)...].firstIndex { $0.startsBlock } ?? merged.frames.count)
        )
        #expect(refusal(merged) == "has an index in which no piece starts the data of dump id \(secondID)")

        // Each table's pieces, unpacked in order, are its rows as COPY gives them.
        #expect(Set(plan.tables.values.map(\.name)) == [#""public"."parent""#, #""public"."child""#])
        #expect(plan.pieces.count > 4, "\(plan.pieces.count) pieces")
        let rows = await ArchiveScannerTests.offThePool {
            var rows: [String: String] = [:]
            for piece in plan.pieces {
                // `"public"."t"`: t.
                let table = plan.tables[piece.dumpID]!.name.split(separator: ".").last.map { $0.dropFirst().dropLast() }
                    .map(String.init)!
                let bytes = try! ZstdFrame.decompress(
                    ByteBuffer(bytes: stored[piece.stored]),
                    settings: ZstdDecompressionSettings()
                )
                let unpacked = try! TableDataPiece.rows(
                    of: bytes,
                    startsBlock: piece.startsBlock,
                    dumpID: piece.dumpID,
                    intSize: contents.intSize
                )
                rows[table, default: ""] += String(buffer: unpacked.rows)
            }
            return rows
        }
        for (table, expected) in copied {
            #expect(rows[table] == expected + "\n", "\(table)")
        }
        // The large object is longer than a piece: its block is cut too.
        #expect(plan.otherFrames.count > 1, "\(plan.otherFrames)")
        #expect(plan.setupStatements.contains { $0.contains("client_encoding") })

        // Every entry of the listing in one run but the tables' data, which pgclone loads.
        let lists = plan.lists(listing: listing)
        #expect(!lists.otherData.isEmpty)
        func entries(_ list: String) -> [String] {
            list.split(separator: "\n").map { String($0.split(separator: " ", maxSplits: 3).last ?? "") }
        }
        let listed = listing.split(separator: "\n").filter { !$0.hasPrefix(";") && !$0.isEmpty }
        let runs = [lists.schema, lists.otherData, lists.indexes, lists.constraints]
        #expect(
            runs.map { $0.split(separator: "\n").count }.reduce(0, +)
                == listed.filter { !$0.contains(" TABLE DATA ") }.count
        )
        #expect(entries(lists.schema).contains { $0.hasPrefix("TABLE public parent ") })
        #expect(!entries(lists.schema).contains { $0.hasPrefix("ACL ") })
        // pg_dump 17 and newer put large objects' metadata in the data section (BLOB METADATA).
        let otherKinds = Set(entries(lists.otherData).map { String($0.prefix { $0 != " " }) })
        #expect(
            otherKinds.isSuperset(of: ["SEQUENCE", "BLOBS"]) && otherKinds.isSubset(of: ["SEQUENCE", "BLOB", "BLOBS"])
        )
        #expect(entries(lists.indexes).contains { $0.hasPrefix("INDEX public child_note ") })
        #expect(entries(lists.indexes).contains { $0.hasPrefix("CONSTRAINT public parent parent_pkey ") })
        #expect(!entries(lists.indexes).contains { $0.hasPrefix("FK CONSTRAINT ") })
        // Foreign keys first, then the privileges and the materialized view's data.
        let last = entries(lists.constraints)
        #expect(last.first?.hasPrefix("FK CONSTRAINT public child child_id_fkey ") == true, "\(last)")
        #expect(last.contains { $0.hasPrefix("ACL public TABLE parent ") }, "\(last)")
        #expect(last.last?.hasPrefix("MATERIALIZED VIEW DATA public mv ") == true, "\(last)")
    }
}

extension ArchiveTableOfContents {
    /// Reads the whole table of contents in `buffer` as a restore does, with an ``EntryReader``,
    /// `chunkSize` bytes at a time. Returns pg_dump's integer size.
    static func readEntries(of buffer: ByteBuffer, chunkSize: Int = 1 << 20, _ body: (Entry) -> Void) throws -> Int {
        var reader = EntryReader()
        var offset = buffer.readerIndex
        while offset < buffer.writerIndex {
            let length = min(chunkSize, buffer.writerIndex - offset)
            if let intSize = try reader.read(buffer.getSlice(at: offset, length: length)!, body) { return intSize }
            offset += length
        }
        throw ArchiveFormatError.needMoreBytes
    }
}
