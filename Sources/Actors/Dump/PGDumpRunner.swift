import NIOCore
package import PGCloneStreams
import Subprocess

/// The pg_dump stage: `pg_dump -Fc -Z0` with its archive streamed out of stdout; owners and
/// privileges are in it unless `extraArguments` leaves them out.
///
/// Compression is the next stage's job (zstd, faster and smaller than pg_dump's gzip). The password,
/// if any, reaches pg_dump through `PGPASSWORD`, never argv.
package struct PGDumpRunner: Sendable {
    package var tools: PostgresTools
    package var connection: ConnectionSettings
    /// Further pg_dump options (exclusions, `--no-owner`, `--no-acl`).
    package var extraArguments: [String] = []
    /// Told when reading pg_dump's stdout waits for it (PostgreSQL is the limit).
    package var stdoutWaiting: (@Sendable (Bool) -> Void)?

    package init(tools: PostgresTools, connection: ConnectionSettings) {
        self.tools = tools
        self.connection = connection
    }

    var arguments: [String] {
        [
            "--format=custom", "--compress=0", "--no-password",
            "--dbname=\(connection.childConnectionString)",
        ] + extraArguments
    }

    /// What a role that dumps needs: pg_dump reads (and locks) every object it dumps.
    package static let readEverything = """
        the role that dumps must be able to read everything in the database: a superuser, a member of \
        pg_read_all_data (PostgreSQL 14 and later), or one granted SELECT on its tables, sequences and large \
        objects and USAGE on its schemas
        """

    /// Runs pg_dump, writing its archive into `output`, which is finished cleanly only if pg_dump
    /// exits with status 0 — so a failed dump can never be stored as complete.
    /// - Returns: the archive's size in bytes.
    package func dump(into output: ByteStream.Source) async throws -> Int {
        let stdoutWaiting = self.stdoutWaiting
        return try await output.finishing {
            let result = try await Subprocess.run(
                ChildProcess.executable(tools.pgDump),
                arguments: Arguments(arguments),
                environment: ChildProcess.environment(connection),
                platformOptions: try ChildProcess.platformOptions(),
                input: .none,
                output: .sequence,
                error: .sequence
            ) { execution in
                async let log = ChildProcess.collect(execution.standardError, program: "pg_dump")
                var produced = 0
                var iterator = execution.standardOutput.makeAsyncIterator()
                while true {
                    stdoutWaiting?(true)
                    let next = try await iterator.next()
                    stdoutWaiting?(false)
                    guard let buffer = next else { break }
                    var chunk = ByteBuffer()
                    chunk.writeBytes(buffer.bytes)
                    produced += chunk.readableBytes
                    try await output.write(chunk)
                }
                return (produced, try await log)
            }
            // Stopped because pgclone was interrupted: that, not the child's status, is the news.
            try Task.checkCancellation()
            let (produced, log) = result.closureResult
            guard result.terminationStatus.isSuccess else {
                let summary = log.summary ?? "it printed no message"
                // pg_dump reads (and locks) every object it dumps: an application role on a managed
                // server often may not read one. (pg_dump 18 says "user may lack SELECT privilege" of a
                // sequence.) Nothing was stored: a missing privilege, exit code 2.
                let refused =
                    summary.contains("permission denied for ") || summary.contains("may lack SELECT privilege")
                let hint = refused ? "; " + Self.readEverything : ""
                throw PGCloneError(
                    refused ? .insufficientPrivilege : .dumpFailed,
                    "pg_dump \(ChildProcess.describe(result.terminationStatus)): \(summary)\(hint)"
                )
            }
            return produced
        }
    }
}
