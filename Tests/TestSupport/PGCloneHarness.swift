package import Foundation

/// One test's pgclone: a fresh working directory (so its storage is the default `.pgclone/` there
/// and no config file applies) and the shared PostgreSQL server.
package struct PGCloneHarness: Sendable {
    package let server: PostgresServer
    package let directory: String

    package init() throws {
        server = try PostgresServer.shared
        directory = try TestEnvironment.makeTemporaryDirectory()
    }

    /// For tests that never reach a server: its address is unusable.
    package static func offline() throws -> PGCloneHarness {
        PGCloneHarness(
            server: PostgresServer(host: "127.0.0.1", port: "1", user: "nobody", password: ""),
            directory: try TestEnvironment.makeTemporaryDirectory()
        )
    }

    private init(server: PostgresServer, directory: String) {
        self.server = server
        self.directory = directory
    }

    /// The default storage location, in the working directory.
    package var storage: String { directory + "/.pgclone" }

    package func run(_ arguments: [String], environment: [String: String?] = [:]) async throws -> CommandResult {
        try await pgclone(arguments, in: directory, environment: environment)
    }

    /// `pgclone dump` of `database`; returns the key it printed.
    package func dump(_ database: String) async throws -> String {
        let result = try await run(["dump", "--database", server.url(database)])
        guard result.exitCode == 0 else { throw TestSetupError("dump failed: \(result)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `pgclone restore source` into `target`.
    package func restore(
        _ source: String,
        into target: String,
        _ extra: [String] = [],
        environment: [String: String?] = [:]
    ) async throws -> CommandResult {
        try await run(["restore", source, "--database", server.url(target)] + extra, environment: environment)
    }

    /// Every file under the storage directory, hidden ones included, relative to it.
    package func storedFiles() -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: storage) else { return [] }
        return enumerator.compactMap { $0 as? String }.filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: storage + "/" + path, isDirectory: &isDirectory)
                && !isDirectory.boolValue
        }.sorted()
    }

    /// Writes `bytes` into the storage directory under `key`.
    package func store(_ bytes: Data, as key: String) throws {
        let path = storage + "/" + key
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        try bytes.write(to: URL(fileURLWithPath: path))
    }

    package func storedData(_ key: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: storage + "/" + key))
    }
}

/// Sends `signal` to every process whose command line contains all of `fragments`; returns their PIDs.
@discardableResult
package func killProcesses(matching fragments: [String], signal: Int32 = SIGKILL) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    var killed: [Int32] = []
    for entry in entries {
        guard let pid = Int32(entry), pid != getpid(),
            let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
        else { continue }
        let commandLine = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
        if fragments.allSatisfy(commandLine.contains) {
            kill(pid, signal)
            killed.append(pid)
        }
    }
    return killed
}
