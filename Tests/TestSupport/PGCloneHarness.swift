package import Foundation

/// One test's pgclone: a fresh working directory (so its storage is the default `.pgclone/` there
/// and no config file applies), removed when the test is done with the harness, also after a
/// failure; and a marker in the environment of every process it starts (children inherit it), so
/// the test signals and counts its own processes and never another test's.
package final class PGCloneHarness: Sendable {
    package let server: PostgresServer
    package let directory: String
    /// `PGCLONE_TEST_MARKER`'s value in the processes this harness starts.
    package let marker = "pgclone-test-\(UUID().uuidString)"

    /// On Debian's PostgreSQL 15, or on `server`.
    package convenience init(server: PostgresServer? = nil) throws {
        self.init(server: try server ?? PostgresServer.shared, directory: try TestEnvironment.makeTemporaryDirectory())
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

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A new directory inside the working directory (removed with it).
    package func makeDirectory(_ name: String) throws -> String {
        let path = directory + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }

    /// The default storage location, in the working directory.
    package var storage: String { directory + "/.pgclone" }

    package func run(_ arguments: [String], environment: [String: String?] = [:]) async throws -> CommandResult {
        var environment = environment
        environment["PGCLONE_TEST_MARKER"] = marker
        if let binDirectory = server.binDirectory, environment["PGCLONE_PG_BIN_DIR"] == nil {
            environment["PGCLONE_PG_BIN_DIR"] = binDirectory
        }
        return try await pgclone(arguments, in: directory, environment: environment)
    }

    /// Sends `signal` to this harness's processes whose command line contains every one of
    /// `fragments` (the pgclone under test by default); returns their PIDs.
    @discardableResult
    package func signal(_ signal: Int32, processesMatching fragments: [String] = [TestEnvironment.binary]) -> [Int32] {
        let pids = markedProcesses(marker).filter { process in fragments.allSatisfy(process.commandLine.contains) }.map(
            \.pid
        )
        for pid in pids { kill(pid, signal) }
        return pids
    }

    /// Waits up to `timeout` for every process this harness started (pgclone, its children, their
    /// children) to end; returns the command lines of those still alive then. The tests give 15 s:
    /// it returns as soon as they are gone, and the watchdog's sweep of every process took more
    /// than 1 s on a machine loaded by a full run (pg_restore's jobs outlived the bound, not
    /// pgclone).
    package func processesAlive(after timeout: Duration) async throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let alive = markedProcesses(marker).map(\.commandLine)
            if alive.isEmpty || ContinuousClock.now >= deadline { return alive }
            try await Task.sleep(for: .milliseconds(20))
        }
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

    /// `pgclone dump` of `database`, stored again without its index of pieces under config
    /// `noindex` (as dumps of earlier builds are): `restore --jobs` spools it to TMPDIR.
    package func dumpWithoutIndex(_ database: String) async throws -> String {
        try storeWithoutIndex(try await dump(database))
    }

    /// The dump stored under `key`, stored again without its index under config `noindex`.
    package func storeWithoutIndex(_ key: String) throws -> String {
        let stored = try storedData(key)
        // The index frame ends with its JSON's length (4 bytes, little-endian) and "PGCINDEX".
        guard stored.suffix(8) == Data("PGCINDEX".utf8) else { throw TestSetupError("\(key) has no index") }
        let json = stored.suffix(12).prefix(4).reversed().reduce(0) { $0 << 8 | Int($1) }
        let unindexed = key.replacingOccurrences(of: ".default.", with: ".noindex.")
        try store(stored.prefix(stored.count - (8 + json + 12)), as: unindexed)
        return unindexed
    }
}

/// Processes, other than this one, with `PGCLONE_TEST_MARKER=marker` in their environment, and their
/// command lines (arguments joined by spaces). Zombies have no environment left and are not listed.
package func markedProcesses(_ marker: String) -> [(pid: Int32, commandLine: String)] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    let wanted = Array("PGCLONE_TEST_MARKER=\(marker)".utf8)
    var found: [(pid: Int32, commandLine: String)] = []
    for entry in entries {
        guard let pid = Int32(entry), pid != getpid(),
            let environment = FileManager.default.contents(atPath: "/proc/\(entry)/environ"),
            environment.split(separator: 0).contains(where: { $0.elementsEqual(wanted) }),
            let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
        else { continue }
        found.append((pid, String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)))
    }
    return found
}
