import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// Progress as a person sees it: on a terminal (tmux), and not at all when stderr is a file.
@Suite(
    .enabled(
        if: TestEnvironment.hasPostgres && FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"),
        "needs PostgreSQL and tmux"
    )
)
struct ProgressTests {
    /// A dump whose restore takes about 9 s: PostgreSQL sleeps 6 ms on every fourth row, long enough
    /// for a status line to be seen however loaded the machine.
    private func slowDump(_ pgclone: PGCloneHarness) async throws -> String {
        let source = TestEnvironment.uniqueName("progress")
        try await pgclone.server.createDatabase(source)
        try await pgclone.server.psql(Fixtures.slowRestoreSQL(rows: 6000, milliseconds: 6), database: source)
        return try await pgclone.dump(source)
    }

    @Test func aTerminalShowsPercentAndRate() async throws {
        let pgclone = try PGCloneHarness()
        let key = try await slowDump(pgclone)
        let target = TestEnvironment.uniqueName("progress_dst")
        let terminal = try await Terminal.start(
            pgclone,
            ["restore", key, "--database", pgclone.server.conninfo(target)]
        )
        defer { pgclone.signal(SIGKILL, processesMatching: []) }
        // When the restore ends, its result stands on a line of its own and the status line is
        // gone. Up to two minutes: the machine may be loaded by the other tests.
        var pane = ""
        for _ in 0..<1200 where !pane.split(separator: "\n").contains(Substring(key)) {
            try await Task.sleep(for: .milliseconds(100))
            pane = try await terminal.screen()
        }
        // While it ran, the status line showed percent and rate.
        let written = terminal.written()
        let seen = written.first { $0.contains("% ") && $0.contains("/s") } ?? ""
        await terminal.close()
        #expect(
            seen.hasPrefix("restore \(target): "),
            "no progress line written:\n\(written.suffix(20).joined(separator: "\n"))"
        )
        #expect(seen.contains(" of "))
        #expect(seen.contains("/s"))
        let lines = pane.split(separator: "\n").map(String.init)
        #expect(lines.contains(key), "the result is not on a line of its own:\n\(pane)")
        #expect(
            !lines.contains { $0.contains("% ") || $0.hasPrefix("restore \(target):") },
            "a status line stayed:\n\(pane)"
        )
    }

    /// The last error line too is on a line of its own, with no status line left behind.
    @Test func aFailureLeavesNoStatusLine() async throws {
        let pgclone = try PGCloneHarness()
        let key = try await slowDump(pgclone)
        let target = TestEnvironment.uniqueName("progress_fail")
        let terminal = try await Terminal.start(
            pgclone,
            ["restore", key, "--database", pgclone.server.conninfo(target), "--pre-swap-hook", "exit 9"]
        )
        defer { pgclone.signal(SIGKILL, processesMatching: []) }
        var pane = ""
        for _ in 0..<600 where !pane.contains("done-1") {
            try await Task.sleep(for: .milliseconds(100))
            pane = try await terminal.screen()
        }
        await terminal.close()
        let lines = pane.split(separator: "\n").map(String.init)
        #expect(
            lines.contains("pgclone: error: pre-swap hook 1 (exit 9) exited with status 9; \"\(target)\" is unchanged"),
            "\(pane)"
        )
        #expect(lines.contains("done-1"), "\(pane)")
        #expect(
            !lines.contains { $0.contains("% ") || $0.hasPrefix("restore \(target):") },
            "a status line stayed:\n\(pane)"
        )
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

/// pgclone in a terminal: a tmux server of the test's own (its own socket), its processes marked
/// as the harness's are. The command prints `done-STATUS` when pgclone ends, then waits.
struct Terminal {
    let session: String
    /// Everything written to the terminal, as tmux's `pipe-pane` saw it: what was on the screen
    /// at some moment, even when the test was too busy to look then.
    let transcript: String

    static func start(_ pgclone: PGCloneHarness, _ arguments: [String]) async throws -> Terminal {
        let session = "pgclone-\(UUID().uuidString.prefix(8))"
        let transcript = "\(pgclone.directory)/\(session).transcript"
        func quoted(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        // pgclone starts once the transcript is being written.
        let command =
            "until [ -e \(quoted(transcript + ".ready")) ]; do sleep 0.05; done; "
            + "cd \(quoted(pgclone.directory)) && PGPASSWORD=\(quoted(pgclone.server.password)) "
            + ([TestEnvironment.binary] + arguments).map(quoted).joined(separator: " ") + "; echo done-$?; sleep 300"
        let started = try await runCommand(
            "tmux",
            ["-L", session, "new-session", "-d", "-s", session, "-x", "200", "-y", "30", command],
            environment: ["PGCLONE_TEST_MARKER": pgclone.marker]
        )
        guard started.exitCode == 0 else { throw TestSetupError("tmux: \(started)") }
        let piped = try await runCommand(
            "tmux",
            ["-L", session, "pipe-pane", "-o", "-t", session, "cat >> \(quoted(transcript))"]
        )
        guard piped.exitCode == 0 else { throw TestSetupError("tmux pipe-pane: \(piped)") }
        FileManager.default.createFile(atPath: transcript + ".ready", contents: nil)
        return Terminal(session: session, transcript: transcript)
    }

    /// The lines and redrawn status lines written so far, escape sequences left out.
    func written() -> [String] {
        let text = (try? String(contentsOfFile: transcript, encoding: .utf8)) ?? ""
        return text.replacingOccurrences(of: "\u{1B}[K", with: "").split(whereSeparator: { $0 == "\r" || $0 == "\n" })
            .map(String.init)
    }

    /// What the terminal shows.
    func screen() async throws -> String {
        try await runCommand("tmux", ["-L", session, "capture-pane", "-p", "-t", session]).stdout
    }

    func close() async {
        _ = try? await runCommand("tmux", ["-L", session, "kill-server"])
    }
}
