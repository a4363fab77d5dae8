import Dispatch
import NIOCore
package import PGCloneMetrics
package import PGCloneStreams
import Synchronization

/// Loads an indexed dump's table data with `sessions` COPY sessions at once: each takes the next
/// piece (``PieceRestorePlan/pieces``, a few MiB of one table's rows) from a ``PieceFeed``, which
/// ``read(into:other:)`` fills as it reads the dump from storage, decompresses it on its own queue
/// and sends its rows with `COPY … FROM stdin`. Pieces of one table load in parallel as well as
/// different tables.
///
/// Memory: ``memory(sessions:pieceSize:)``.
package struct PieceLoader: Sendable {
    package var storage: any StorageBackend
    package var dump: IndexedDump
    /// To the database restored into, with the restore's session settings.
    package var connection: ConnectionSettings
    /// `restore --role`: the sessions `SET ROLE` to it, as pg_restore's do.
    package var role: String?
    package var ignoreErrors: Bool
    package var decompression: ZstdDecompressionSettings
    package var metrics: PGCloneMetrics
    /// Checks that each session is on the database restored into
    /// (``DatabaseSwap/confirmConnected(_:)``), which it connects to by name.
    package var confirmSession: (@Sendable (PostgresConnection) async throws -> Void)?

    package init(
        storage: any StorageBackend,
        dump: IndexedDump,
        connection: ConnectionSettings,
        role: String?,
        ignoreErrors: Bool,
        decompression: ZstdDecompressionSettings,
        metrics: PGCloneMetrics,
        confirmSession: (@Sendable (PostgresConnection) async throws -> Void)? = nil
    ) {
        self.storage = storage
        self.dump = dump
        self.connection = connection
        self.role = role
        self.ignoreErrors = ignoreErrors
        self.decompression = decompression
        self.metrics = metrics
        self.confirmSession = confirmSession
    }

    /// What the pieces take at most, besides the download's own buffers (as in a streamed
    /// restore): those waiting in the ``PieceFeed`` and the one being cut, as stored (about the
    /// piece size at most: zstd grows incompressible bytes by a fraction of a percent), and per
    /// session a piece as stored and decompressed (its rows are moved together within it) and
    /// libpq's buffer. A row longer than the piece size makes its piece longer.
    package static func memory(sessions: Int, pieceSize: Int) -> Int {
        (sessions + 1) * pieceSize + sessions * (2 * pieceSize + (1 << 20))
    }

    /// What the loading did.
    package struct Report: Sendable {
        package var pieces = 0
        /// Archive bytes loaded.
        package var archiveBytes = 0
        /// Tables a piece of which the server refused, with `--ignore-restore-errors`: one error
        /// each, as pg_restore reports a failed COPY.
        package var errors: [ChildStderr.Entry] = []
        package var errorCount = 0
        /// The longest a piece took, from its read to its COPY's end, and all pieces together
        /// (the time one session would have taken, if the server were as fast for one).
        package var longestPiece: Duration = .zero
        package var piecesTime: Duration = .zero
        /// Tables a piece of which the server refused (`ignoreErrors`): emptied once the data is in.
        var failedTables: Set<Int> = []
    }

    /// Loads every piece `feed` gives, with `sessions` sessions.
    /// - Throws: ``PieceFailure`` for a piece that is corrupt; ``RestoreFailure`` for a COPY the
    ///   server refused (unless `ignoreErrors`); a storage or connection error as it comes.
    func load(sessions: Int, from feed: PieceFeed) async throws -> Report {
        let shared = Shared(feed: feed)
        let loader = self
        try await withThrowingTaskGroup(of: Void.self) { group in
            for number in 1...max(1, min(sessions, dump.plan.pieces.count)) {
                group.addTask { try await loader.runSession(number, shared) }
            }
            // Not waitForAll, which waits for every session whatever one threw: the first to fail
            // stops the reader, and the others (cancelled as the error leaves the group) at once;
            // they would go on loading, or wait for pieces of a table only the failed one may load.
            do {
                while try await group.next() != nil {}
            } catch {
                await feed.fail(error)
                throw error
            }
        }
        let report = shared.report.withLock { $0 }
        try await emptyFailedTables(report.failedTables)
        return report
    }

    /// Empties the tables a piece of which failed, so that each is as pg_restore leaves a table
    /// whose COPY failed (empty, not in part), once every other piece of theirs is in.
    private func emptyFailedTables(_ failed: Set<Int>) async throws {
        guard !failed.isEmpty else { return }
        let session = try await PostgresConnection.connect(connection)
        do {
            try await confirmSession?(session)
            for statement in setupStatements() { try await session.execute(statement) }
            for dumpID in failed.sorted() {
                try await session.execute(bytes: dump.plan.tables[dumpID]!.truncateStatement)
            }
        } catch {
            await session.close()
            throw error
        }
        await session.close()
    }

    /// What the sessions share: the pieces to take, and the report.
    private final class Shared: Sendable {
        let feed: PieceFeed
        let report = Mutex(Report())

        init(feed: PieceFeed) {
            self.feed = feed
        }
    }

    /// Reads the dump from start to end as a streamed restore does (S3's ranged GETs of large
    /// parts, several in flight) and cuts it at the index's frames: the tables' pieces go into
    /// `feed`, the large objects' decompressed into `other` (pg_restore's stdin), in order; the
    /// rest (metadata, table of contents, index) is passed over. Finishes both, with the error if
    /// it fails.
    func read(into feed: PieceFeed, other: ByteStream.Source?) async throws {
        enum Kind {
            case table(Int)
            case other(archive: Range<Int>)
        }
        var frames: [(stored: Range<Int>, kind: Kind)] = dump.plan.pieces.enumerated().map { ($1.stored, .table($0)) }
        frames += dump.plan.otherFrames.map { number in
            let (stored, archive) = dump.index.ranges(of: number)
            return (stored, .other(archive: archive))
        }
        frames.sort { $0.stored.lowerBound < $1.stored.lowerBound }
        // The download step: its bytes, and its waits for room while the sessions are all busy.
        let (stream, source) = metrics.stream(
            .downloadToDecompress,
            capacity: .bytes(1 << 20),
            from: .download,
            to: nil
        )
        let storage = self.storage
        let key = dump.dump.key
        let decoder = PieceDecoder(settings: decompression, intSize: dump.intSize)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                // The download step's clock runs while the object is read, as in one stream.
                let metrics = self.metrics
                group.addTask { _ = try await metrics.running(.download) { try await storage.read(key, into: source) } }
                var offset = 0
                var next = 0
                var piece: ByteBuffer?
                for try await chunk in stream {
                    var chunk = chunk
                    while chunk.readableBytes > 0, next < frames.count {
                        let frame = frames[next]
                        if offset < frame.stored.lowerBound {
                            let skipped = min(frame.stored.lowerBound - offset, chunk.readableBytes)
                            chunk.moveReaderIndex(forwardBy: skipped)
                            offset += skipped
                            continue
                        }
                        let taken = min(frame.stored.upperBound - offset, chunk.readableBytes)
                        if piece == nil {
                            piece = await feed.spare() ?? ByteBufferAllocator().buffer(capacity: frame.stored.count)
                            piece!.clear(minimumCapacity: frame.stored.count)
                        }
                        piece!.writeImmutableBuffer(chunk.readSlice(length: taken)!)
                        offset += taken
                        guard offset == frame.stored.upperBound, let whole = piece else { continue }
                        piece = nil
                        next += 1
                        switch frame.kind {
                        case .table(let index):
                            let dumpID = dump.plan.pieces[index].dumpID
                            try await feed.put(
                                PieceFeed.Item(
                                    index: index,
                                    stored: whole,
                                    inOrder: dump.plan.tablesInOrder.contains(dumpID) ? dumpID : nil
                                )
                            )
                        case .other(let archive):
                            guard let other else { break }
                            try await other.write(
                                try await decoder.archive(of: whole, range: archive, what: "large objects")
                            )
                            // Decompressed: the next piece is cut into it, as into a session's.
                            await feed.recycle(whole)
                        }
                    }
                }
                guard next == frames.count else { throw DumpFormatError.truncated }
                try await group.waitForAll()
            }
        } catch {
            stream.cancel()
            await feed.fail(error)
            other?.finish(throwing: error)
            throw error
        }
        await feed.finish()
        other?.finish()
    }

    /// The statements pg_restore runs when it opens a session (`_doSetFixedOutputState`), but the
    /// timeouts a server of an older version may not know.
    func setupStatements() -> [String] {
        var statements = [
            "SET statement_timeout = 0", "SET lock_timeout = 0", "SET idle_in_transaction_session_timeout = 0",
        ]
        statements += dump.plan.setupStatements.filter { !$0.contains("search_path") }
        if let role { statements.append("SET ROLE \(quoteIdentifier(role))") }
        statements += dump.plan.setupStatements.filter { $0.contains("search_path") }
        statements += [
            "SET check_function_bodies = false", "SET xmloption = content", "SET client_min_messages = warning",
            "SET row_security = off",
        ]
        return statements
    }

    /// COPY session `number` (from 1, its `worker` label): takes pieces until there are none.
    private func runSession(_ number: Int, _ shared: Shared) async throws {
        let pieces = dump.plan.pieces
        let worker = metrics.worker(number)
        worker.started()
        defer { worker.finished() }
        let session = try await PostgresConnection.connect(connection)
        do {
            try await confirmSession?(session)
            for statement in setupStatements() { try await session.execute(statement, cancellable: true) }
            let decoder = PieceDecoder(settings: decompression, intSize: dump.intSize)
            let decompress = metrics.step(.decompress)
            let load = metrics.step(.restoreStdin)
            let clock = ContinuousClock()
            while true {
                let asked = clock.now
                guard var item = try await shared.feed.next(session: number) else { break }
                try Task.checkCancellation()
                let piece = pieces[item.index]
                let table = dump.plan.tables[piece.dumpID]!
                let start = clock.now
                worker.waited(start - asked)
                load.record(starved: start - asked)
                // A table already refused is emptied at the end: its other pieces are not loaded.
                if shared.report.withLock({ $0.failedTables.contains(piece.dumpID) }) { continue }
                let rows = try await decoder.rows(of: item.stored, piece: piece, table: table)
                // Its stored bytes are decompressed: the reader cuts another piece into them.
                await shared.feed.recycle(item.stored)
                item.stored = ByteBuffer()
                let decompressed = clock.now
                decompress.record(busy: decompressed - start)
                decompress.produced(piece.archive.count)
                // The COPY is the session waiting for PostgreSQL: restore_stdin's backpressure, as
                // pg_restore's stdin is in one stream.
                defer { load.record(backpressure: clock.now - decompressed) }
                do {
                    try await session.copyIn(table.copyStatementBytes, rows: rows)
                    await decoder.recycle(rows)
                } catch let error as LibPQError where !error.connectionLost {
                    var entry = ChildStderr.Entry(
                        message: "COPY failed for table \(table.name): \(error.message)",
                        tocEntry: "TABLE DATA \(table.name)",
                        detail: error.detail,
                        hint: error.hint,
                        // COPY counts lines from the piece's first row, not the table's.
                        context: error.context.map {
                            "\($0) (of the piece at archive byte \(piece.archive.lowerBound))"
                        },
                        statement: table.copyStatement
                    )
                    entry.program = "pgclone"
                    guard ignoreErrors else {
                        var failed = RestoreRunner.Report(errorCount: 1, errors: [entry], bytesWritten: 0)
                        failed.pgRestore = "pgclone"
                        throw RestoreFailure(
                            message: "loading the table data failed (first: \(entry.message))",
                            report: failed,
                            acceptable: true
                        )
                    }
                    // One error per table, as pg_restore counts a failed COPY.
                    shared.report.withLock {
                        guard $0.failedTables.insert(piece.dumpID).inserted else { return }
                        entry.message += " (the table is left empty)"
                        $0.errorCount += 1
                        if $0.errors.count < ChildStderr.maximumEntries { $0.errors.append(entry) }
                    }
                }
                load.consumed(piece.archive.count)
                let took = clock.now - start
                worker.sent(bytes: piece.archive.count, took: took)
                shared.report.withLock {
                    $0.pieces += 1
                    $0.archiveBytes += piece.archive.count
                    $0.longestPiece = max($0.longestPiece, took)
                    $0.piecesTime += took
                }
            }
        } catch {
            await session.close()
            throw error
        }
        await session.close()
    }
}

/// A piece of an indexed dump that could not be read: corrupt, or not what its index says.
package struct PieceFailure: Error, Sendable, CustomStringConvertible {
    /// What it holds: `table public.t's data`, `large objects`.
    package var what: String
    package var archive: Range<Int>
    /// What is wrong, completing "the dump … ".
    package var reason: String

    package var description: String {
        "\(reason), in a piece of \(what) (archive bytes \(archive.lowerBound) to \(archive.upperBound))"
    }
}

/// Decompresses and unpacks pieces on a queue of its own: a piece is megabytes of zstd, which
/// must not hold one of the cooperative pool's threads.
actor PieceDecoder {
    private let executor = DispatchQueueExecutor(label: "pgclone.piece")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    let settings: ZstdDecompressionSettings
    let intSize: Int
    /// The largest piece whose buffer is allocated at the size the index gives.
    static let largestSizedPiece = 256 << 20
    /// The largest buffer kept for the next piece (a piece is a few MiB; one of a long row's is
    /// not kept).
    static let largestSpare = 16 << 20
    /// The last piece's buffer, loaded: the next piece is decompressed into it.
    private var spare: ByteBuffer?

    init(settings: ZstdDecompressionSettings, intSize: Int) {
        self.settings = settings
        self.intSize = intSize
    }

    /// The archive bytes `stored` holds, which must be `range`'s; `what` the piece holds, for errors.
    func archive(of stored: ByteBuffer, range: Range<Int>, what: String) throws -> ByteBuffer {
        let archive: ByteBuffer
        do {
            // Sized by the index up to a bound: beyond it (a row of hundreds of MiB, or an index
            // that says so wrongly), the buffer grows as bytes actually come.
            archive = try ZstdFrame.decompress(
                stored,
                settings: settings,
                expectedSize: range.count <= Self.largestSizedPiece ? range.count : nil,
                reusing: spare.take()
            )
        } catch DumpFormatError.truncated {
            // A whole frame, by the index: cut short, the index does not match the object.
            throw PieceFailure(
                what: what,
                archive: range,
                reason: "does not match its index (the piece it gives ends in the middle of a zstd frame)"
            )
        } catch DumpFormatError.windowTooLarge {
            throw PieceFailure(what: what, archive: range, reason: DumpFormatError.corruptFrameHeader.description)
        } catch let error as DumpFormatError {
            throw PieceFailure(what: what, archive: range, reason: error.description)
        }
        guard archive.readableBytes == range.count else {
            throw PieceFailure(
                what: what,
                archive: range,
                reason: "does not match its index (\(archive.readableBytes) bytes where it says \(range.count))"
            )
        }
        return archive
    }

    /// Keeps `buffer`, a piece's that is loaded, for the next piece.
    func recycle(_ buffer: consuming ByteBuffer) {
        guard buffer.capacity <= Self.largestSpare else { return }
        spare = buffer
    }

    /// The rows `stored` holds, checked against what the index says of `piece`.
    func rows(
        of stored: ByteBuffer,
        piece: PieceRestorePlan.Piece,
        table: PieceRestorePlan.Table
    ) throws -> ByteBuffer {
        let archive = try self.archive(of: stored, range: piece.archive, what: "table \(table.name)'s data")
        do {
            return try TableDataPiece.rows(
                of: consume archive,
                startsBlock: piece.startsBlock,
                dumpID: piece.dumpID,
                intSize: intSize
            ).rows
        } catch {
            throw PieceFailure(
                what: "table \(table.name)'s data",
                archive: piece.archive,
                reason: "does not match its index (\(error))"
            )
        }
    }
}
