internal import CPGCloneLibPQ
import Dispatch
package import NIOCore
import PGCloneStreams

extension PostgresConnection {
    /// Bytes handed to libpq per `PQputCopyData`: libpq grows its output buffer to the largest
    /// message, so rows go in slices of this size, not as one piece-sized message.
    static let copySliceSize = 256 << 10

    /// Runs `statement`, a `COPY … FROM stdin`, with `rows` (COPY text) as its data, and waits for
    /// its end. Cancelled on the server (`PQcancel`) when the task is, and then throws
    /// `CancellationError`.
    /// - Throws: ``LibPQError`` with the server's fields and the statement.
    package nonisolated func copyIn(_ statement: [UInt8], rows: ByteBuffer) async throws {
        let canceller = self.canceller
        do {
            try await withTaskCancellationHandler {
                try await performCopy(statement, rows: rows)
            } onCancel: {
                DispatchQueue.global().async { canceller.cancel() }
            }
        } catch let error as LibPQError where error.isQueryCanceled && Task.isCancelled {
            throw CancellationError()
        }
    }

    private func performCopy(_ statementBytes: [UInt8], rows: ByteBuffer) throws {
        // For messages: the statement is in the database's encoding, which need not be UTF-8 (and
        // pg_dump's ends in a newline).
        let statement = String(decoding: statementBytes, as: UTF8.self).trimmingWhitespace()
        let handle = try openHandle(for: statement)
        if Task.isCancelled { throw CancellationError() }
        canceller.setActive(true)
        defer { canceller.setActive(false) }
        let started = Self.exec(handle, statementBytes)
        defer { PQclear(started) }
        guard PQresultStatus(started) == PGRES_COPY_IN else { throw error(from: started, statement: statement) }
        var rest = rows
        var sent = true
        while sent, rest.readableBytes > 0,
            let slice = rest.readSlice(length: min(rest.readableBytes, Self.copySliceSize))
        {
            sent = slice.withUnsafeReadableBytes { bytes in
                bytes.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) == 1 }
            }
        }
        // A failed send is the connection's; the COPY's own error, if any, comes as its result.
        _ = PQputCopyEnd(handle, sent ? nil : "pgclone could not send the rows")
        var failure: LibPQError?
        while let result = PQgetResult(handle) {
            if PQresultStatus(result) != PGRES_COMMAND_OK && failure == nil {
                failure = error(from: result, statement: statement)
            }
            PQclear(result)
        }
        if let failure { throw failure }
        guard sent, PQstatus(handle) != CONNECTION_BAD else { throw error(from: nil, statement: statement) }
    }

    /// Runs `statement`, given as bytes in the session's client encoding (a name from an archive
    /// of a database that is not UTF-8), and waits for its end.
    /// - Throws: ``LibPQError`` with the server's fields.
    package func execute(bytes statementBytes: [UInt8]) throws {
        let statement = String(decoding: statementBytes, as: UTF8.self).trimmingWhitespace()
        let handle = try openHandle(for: statement)
        let result = Self.exec(handle, statementBytes)
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COMMAND_OK else { throw error(from: result, statement: statement) }
    }

    /// `PQexec` of bytes, NUL-terminated here.
    private static func exec(_ handle: OpaquePointer, _ statement: [UInt8]) -> OpaquePointer? {
        (statement + [0]).withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { PQexec(handle, $0.baseAddress) }
        }
    }
}
