package import NIOCore
package import PGCloneStreams

/// A dump opened for a restore in pieces (`restore --jobs N`): its ``ArchiveIndex``, its metadata,
/// and its archive's header and table of contents, read with two ranged reads (GETs in S3) at once: the
/// object's end, and its start (a third if the table of contents is longer than guessed).
/// What the restore then needs of it is in ``plan``.
package struct IndexedDump: Sendable {
    package let dump: StoredDump
    package let index: ArchiveIndex
    package let metadata: DumpMetadata?
    /// The archive's header and table of contents (the index's first frame, decompressed), in a
    /// file in memory: what pg_restore reads to restore the schema, and its large objects' and
    /// sequences' data after. (Tens of MB for a large schema: in the file they count once towards
    /// the process's memory, and not towards its RSS.) Closed when the restore is done with it.
    package let head: MemoryFile
    /// The archive's version, from its header: which pg_restore reads it.
    package let archiveVersion: ArchiveVersion?
    /// pg_dump's integer size, from the archive's header. (The table of contents' entries are not
    /// kept: ``plan`` has what the restore needs of them, and for 100,000 large objects they take
    /// tens of MB.)
    package let intSize: Int
    package let plan: PieceRestorePlan

    /// How much of the object's start is read with its end, in bytes, before the index says how
    /// much the metadata and the table of contents take.
    static let headGuess = 256 << 10

    /// A table of contents that decompresses to more than the index says.
    private struct LongerThanIndexed: Error {}

    /// Whether the dump can be restored in pieces, and if not, why.
    package enum Opening: Sendable {
        case ready(IndexedDump)
        /// Why not, completing "the dump …".
        case unavailable(String)
    }

    /// Opens `dump`, or says why it cannot be restored in pieces (it has no index, or one pgclone
    /// cannot use). Reading it from storage may fail as any read does.
    /// - Throws: ``DumpFormatError`` if its table of contents' frame is corrupt.
    package static func open(
        _ dump: StoredDump,
        storage: any StorageBackend,
        settings: ZstdDecompressionSettings
    ) async throws -> Opening {
        // The object's start is read while its end is: the index says how much of it the table of
        // contents takes, but a schema of up to a thousand tables or so fits the first 256 KiB, so
        // one round trip does for both.
        let guess = min(dump.size, Self.headGuess)
        async let start = guess > 0 ? storage.readHead(dump.key, length: guess) : []
        let index: ArchiveIndex
        switch try await storage.archiveIndex(of: dump.key) {
        case .index(let found): index = found
        case .none, .needsBytes:
            return .unavailable(
                "has no index of its pieces (dumps of earlier pgclone builds, django-pgclone's and pg_dump's have none)"
            )
        case .damaged(let reason): return .unavailable("has a damaged index (\(reason))")
        }
        guard index.formatVersion == 1, index.isConsistent(storedSize: dump.size) else {
            return .unavailable("has an index pgclone cannot use (its frames do not fit the object)")
        }
        let tableOfContents = index.ranges(of: 0)
        var first = try await start
        if first.count < tableOfContents.stored.upperBound, first.count < dump.size {
            first = try await storage.readHead(dump.key, length: tableOfContents.stored.upperBound)
        }
        let stored = ByteBuffer(bytes: first.prefix(tableOfContents.stored.upperBound))
        guard stored.readableBytes == tableOfContents.stored.upperBound else {
            return .unavailable("is shorter than its index says")
        }
        var metadata: DumpMetadata?
        if tableOfContents.stored.lowerBound > 0 {
            let prefix = Array(stored.readableBytesView.prefix(tableOfContents.stored.lowerBound))
            if case .head(let head) = DumpHead.parse(prefix) { metadata = head.metadata }
        }
        let frame = stored.getSlice(at: tableOfContents.stored.lowerBound, length: tableOfContents.stored.count)!
        // Decompressed a chunk at a time into a file in memory, its entries read one at a time into
        // the plan as they come: neither the bytes nor the entries are held (100,000 large
        // objects make 19 MB of table of contents, and their entries took tens of MB more).
        let head = try MemoryFile(name: "pgclone-toc")
        var builder = PieceRestorePlan.Builder()
        var reader = ArchiveTableOfContents.EntryReader()
        var (length, header, intSize) = (0, [UInt8](), Int?.none)
        var unreadable: (any Error)?
        do {
            try ZstdFrame.decompress(frame, settings: settings, chunkSize: 1 << 20) { chunk in
                length += chunk.readableBytes
                guard length <= tableOfContents.archive.count else { throw LongerThanIndexed() }
                try head.append(chunk)
                header += chunk.readableBytesView.prefix(16 - header.count)
                guard intSize == nil, unreadable == nil else { return }
                do {
                    intSize = try reader.read(chunk) { builder.add($0) }
                } catch {
                    unreadable = error
                }
            }
        } catch is LongerThanIndexed {
            return .unavailable("has an index that does not match its table of contents")
        } catch DumpFormatError.truncated {
            // The object is as long as the index says: its frame is cut where the index says.
            return .unavailable(
                "has an index that does not match its table of contents (it ends the frame in the middle of one)"
            )
        } catch DumpFormatError.windowTooLarge {
            // pgclone writes 1 MiB windows, which every reader allows: a header asking for more
            // is damaged, whatever --memory-limit says.
            throw DumpFormatError.corruptFrameHeader
        }
        guard length == tableOfContents.archive.count else {
            return .unavailable("has an index that does not match its table of contents")
        }
        guard let intSize else {
            let reason = unreadable.map { "\($0)" } ?? ArchiveFormatError.needMoreBytes.description
            return .unavailable("has a table of contents pgclone does not read (\(reason))")
        }
        switch builder.plan(index: index) {
        case .success(let plan):
            return .ready(
                IndexedDump(
                    dump: dump,
                    index: index,
                    metadata: metadata,
                    head: head,
                    archiveVersion: ArchiveVersion(header: header),
                    intSize: intSize,
                    plan: plan
                )
            )
        case .failure(let reason):
            return .unavailable(reason.description)
        }
    }
}
