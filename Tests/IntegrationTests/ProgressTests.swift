import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// Progress as a person sees it: on a terminal (tmux), and not at all when stderr is a file.
@Suite(.enabled(if: TestEnvironment.hasPostgres && FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"), "needs PostgreSQL and tmux"))
struct ProgressTests {
    /// A dump whose restore takes a few seconds: PostgreSQL sleeps on every fourth row.
    private func slowDump(_ pgclone: PGCloneHarness) async throws -> String {
        let source = TestEnvironment.uniqueName("progress")
        try await pgclone.server.createDatabase(source)
        try await pgclone.server.psql(Fixtures.slowRestoreSQL(rows: 6000), database: source)
        return try await pgclone.dump(source)
    }

    @Test func aTerminalShowsPercentAndRate() async throws {
        let pgclone = try PGCloneHarness()
        let key = try await slowDump(pgclone)
        let target = TestEnvironment.uniqueName("progress_dst")
        let session = "pgclone-\(UUID().uuidString.prefix(8))"
        let server = pgclone.server
        let command = [
            "cd '\(pgclone.directory)'", "&&", "PGPASSWORD='\(server.password)'", TestEnvironment.binary, "restore", key,
            "--database", "'host=\(server.host) port=\(server.port) user=\(server.user) dbname=\(target)'", ";", "sleep 30",
        ].joined(separator: " ")
        // A tmux server of the test's own (its own socket), marked as the harness's processes are.
        let started = try await runCommand(
            "tmux",
            ["-L", session, "new-session", "-d", "-s", session, "-x", "200", "-y", "20", command],
            environment: ["PGCLONE_TEST_MARKER": pgclone.marker]
        )
        #expect(started.exitCode == 0, "\(started)")
        defer { pgclone.signal(SIGKILL, processesMatching: []) }
        var seen = ""
        for _ in 0..<100 {
            try await Task.sleep(for: .milliseconds(100))
            let pane = try await runCommand("tmux", ["-L", session, "capture-pane", "-p", "-t", session]).stdout
            if let line = pane.split(separator: "\n").first(where: { $0.contains("% ") && $0.contains("/s") }) {
                seen = String(line)
                break
            }
        }
        _ = try await runCommand("tmux", ["-L", session, "kill-server"])
        #expect(seen.hasPrefix("restore \(target): "), "no progress line seen")
        #expect(seen.contains(" of "))
        #expect(seen.contains("/s"))
    }

    @Test func noProgressWhenStderrIsAFile() async throws {
        let pgclone = try PGCloneHarness()
        let key = try await slowDump(pgclone)
        let target = TestEnvironment.uniqueName("progress_file")
        let result = try await pgclone.restore(key, into: target)
        #expect(result.exitCode == 0, "\(result)")
        #expect(!result.stderr.contains("\r"))
        #expect(!result.stderr.contains("\u{1B}["))
        #expect(!result.stderr.contains("% "))
    }
}
