import Foundation

/// A server the tests start and stop themselves (Prometheus, the Pushgateway): `nohup`, its output
/// in a log file, its PID to stop it with.
package struct BackgroundProcess: Sendable {
    package var pid: Int32
    package var log: String

    package static func start(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:]
    ) async throws -> BackgroundProcess {
        let directory = try TestEnvironment.makeTemporaryDirectory("pgclone-bg")
        let log = directory + "/log"
        let assignments = environment.map { "\($0.key)=\($0.value)" }
        let result = try await runCommand(
            "bash",
            ["-c", "nohup env \"$@\" > \"\(log)\" 2>&1 & echo $!", "bash"] + assignments + [executable] + arguments
        )
        guard let pid = Int32(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestSetupError("could not start \(executable): \(result)")
        }
        return BackgroundProcess(pid: pid, log: log)
    }

    /// Stops the process and removes its log.
    package func stop() {
        kill(pid, SIGTERM)
        try? FileManager.default.removeItem(atPath: (log as NSString).deletingLastPathComponent)
    }

    package var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
}

/// A TCP port nothing listens on at the moment.
package func freePort() async throws -> Int {
    let result = try await runCommand(
        "python3",
        ["-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"]
    )
    guard let port = Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw TestSetupError("no free port: \(result)")
    }
    return port
}

/// An HTTP GET with curl: status, headers (names lowercased) and body.
package func httpGet(_ url: String) async throws -> (status: Int, headers: [String: String], body: String) {
    let result = try await runCommand("curl", ["-sS", "-D", "-", url])
    guard let split = result.stdout.range(of: "\r\n\r\n") else {
        return (0, [:], result.stderr)
    }
    let head = result.stdout[..<split.lowerBound].split(separator: "\r\n")
    let status = head.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
    var headers: [String: String] = [:]
    for line in head.dropFirst() {
        if let colon = line.firstIndex(of: ":") {
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces
            )
        }
    }
    return (status, headers, String(result.stdout[split.upperBound...]))
}

/// Waits until `url` answers.
package func waitUntilServing(_ url: String, seconds: Int = 20) async throws {
    for _ in 0..<(seconds * 10) {
        if try await runCommand("curl", ["-fsS", "-o", "/dev/null", url]).exitCode == 0 { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw TestSetupError("\(url) did not answer within \(seconds) s")
}

/// `promtool check metrics` of `exposition`: its exit code and findings.
package func promtoolCheckMetrics(_ exposition: String) async throws -> CommandResult {
    try await runCommand("promtool", ["check", "metrics"], input: exposition)
}
