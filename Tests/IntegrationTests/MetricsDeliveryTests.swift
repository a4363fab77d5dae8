import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// Metrics as Prometheus, the Pushgateway and node_exporter see them: `promtool check metrics` on
/// live output, the rules' unit tests, textfiles, pushes, and the bottleneck made visible.
@Suite(
    .enabled(
        if: TestEnvironment.hasPostgresAndS3 && TestEnvironment.hasPrometheus,
        "needs PostgreSQL, moto and Prometheus's tools"
    )
)
struct MetricsDeliveryTests {
    let s3 = S3TestServer.shared!

    @Test func liveOutputInTheMiddleOfAnS3RestorePassesPromtool() async throws {
        let pgclone = try PGCloneHarness()
        let dumped = try await pgclone.dumpToNewBucket(s3, prefix: "mlive")
        let (environment, key) = (dumped.environment, dumped.key)
        let target = "we\"ird\\db \(UUID().uuidString.prefix(6))"
        // The first part is held after 20,000 bytes until the scrape is done: the download is
        // running when it is read, however loaded the machine.
        let released = try pgclone.makeDirectory("hold") + "/released"
        let (proxied, log, stop) = try await s3.behindFaultyProxy(["GET:hold:20000:\(released)"])
        defer { stop() }
        var proxiedEnvironment = environment
        proxiedEnvironment["PGCLONE_S3_ENDPOINT_URL"] = proxied.endpoint
        // The hold outlasts the test, however starved: at the 30 s default, a loaded run's GET was
        // retried past it, the restore ended and its server with it before the second request.
        proxiedEnvironment["PGCLONE_S3_STALL_TIMEOUT"] = "600"
        let port = try await freePort()
        let connection = """
            host=\(pgclone.server.host) port=\(pgclone.server.port) user=\(pgclone.server.user) dbname='we\"ird\\\\db \
            \(target.suffix(6))'
            """
        proxiedEnvironment["PGPASSWORD"] = pgclone.server.password
        async let restoring = pgclone.run(
            ["restore", key, "--database", connection, "--metrics-address", "127.0.0.1:\(port)"],
            environment: proxiedEnvironment
        )
        while !log().contains("fault GET:hold") { try await Task.sleep(for: .milliseconds(20)) }
        let scrape = try await httpGet("http://127.0.0.1:\(port)/metrics")
        // Asked while the server still runs (the download is held): any other path is not found.
        let landing = try await httpGet("http://127.0.0.1:\(port)/nope")
        FileManager.default.createFile(atPath: released, contents: nil)
        let result = try await restoring
        #expect(result.exitCode == 0, "\(result)")
        #expect(scrape.status == 200)
        #expect(scrape.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        let lint = try await promtoolCheckMetrics(scrape.body)
        #expect(lint.exitCode == 0, "\(lint)")
        #expect(scrape.body.contains(#"database="we\"ird\\db "#))
        #expect(scrape.body.contains("pgclone_step_active{step=\"download\"} 1"))
        #expect(scrape.body.contains("outcome=\"running\"} 1"))
        #expect(landing.status == 404, "\(landing)")
        try await pgclone.server.dropDatabase(target)
    }

    /// A socket listening on a free port of 127.0.0.1 that never accepts: connections to it are
    /// queued by the kernel and never answered.
    static func listeningSocket() throws -> (socket: Int32, port: Int) {
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(holder, 8) == 0 else {
            close(holder)
            throw TestSetupError("could not listen on 127.0.0.1")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(holder, $0, &length) }
        }
        return (holder, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A metrics port another process holds: one line with the reason, exit 2, no function names.
    @Test func aBusyMetricsPortIsOneLine() async throws {
        let pgclone = try PGCloneHarness.offline()
        let (holder, port) = try Self.listeningSocket()
        defer { close(holder) }
        let result = try await pgclone.run(["ls", "--metrics-address", "127.0.0.1:\(port)"])
        #expect(result.exitCode == 2, "\(result)")
        #expect(
            result.errorLines == ["pgclone: error: cannot serve metrics on 127.0.0.1:\(port): Address already in use"],
            "\(result)"
        )
        // --json owes its document for this refusal too.
        let json = try await pgclone.run(["ls", "--json", "--metrics-address", "127.0.0.1:\(port)"])
        #expect(json.exitCode == 2, "\(json)")
        #expect(json.stdout.contains("\"exit_code\":2"), "\(json)")
    }

    /// Metrics options that cannot work are refused before the command runs (exit 2, one line,
    /// and the JSON document with --json), not warned about once it has run.
    @Test(arguments: [
        (["--metrics-address", "nope"], "the metrics address must be host:port"),
        (["--log-format", "yaml"], "--log-format"),
        (["--pushgateway", "ftp://gw:S3cret-pw@x"], "--pushgateway takes the Pushgateway's http:// or https:// URL"),
        (["--pushgateway", "http://h/x y"], "--pushgateway takes"),
        (["--metrics-textfile", "/nonexistent/dir"], "--metrics-textfile takes a directory that exists"),
    ])
    func badMetricsOptionsAreRefusedFirst(_ options: [String], _ message: String) async throws {
        let pgclone = try PGCloneHarness.offline()
        for json in [false, true] {
            let result = try await pgclone.run(["ls"] + options + (json ? ["--json"] : []))
            #expect(result.exitCode == 2, "\(result)")
            #expect(result.errorLines.count == 1 && result.errorLines[0].contains(message), "\(result)")
            #expect(!result.stderr.contains("S3cret-pw") && !result.stdout.contains("S3cret-pw"), "\(result)")
            #expect(json ? result.stdout.contains("\"exit_code\":2") : result.stdout.isEmpty, "\(result)")
        }
    }

    /// A Pushgateway that takes connections and never answers holds a job 5 s at its start and 5 s
    /// at its end, and says so; the job succeeds.
    @Test func aPushgatewayThatNeverAnswersHoldsTheJobSeconds() async throws {
        let pgclone = try PGCloneHarness()
        let source = TestEnvironment.uniqueName("mpush_silent")
        try await pgclone.server.createDatabase(source)
        let (holder, port) = try Self.listeningSocket()
        defer { close(holder) }
        let started = ContinuousClock.now
        let result = try await pgclone.run([
            "dump", "--database", pgclone.server.url(source), "--pushgateway", "http://127.0.0.1:\(port)",
        ])
        let elapsed = ContinuousClock.now - started
        #expect(result.exitCode == 0, "\(result)")
        let warnings = result.stderrLines.filter { $0.contains("the Pushgateway did not answer within 5 s") }
        #expect(warnings.count == 2, "\(result)")
        // Two pushes of 5 s, and the dump: not the 17 s each a stalled transfer took.
        #expect(elapsed < .seconds(25), "\(elapsed)")
    }

    @Test func rulesPassPromtoolAndTheirUnitTests() async throws {
        let root = FileManager.default.currentDirectoryPath + "/dashboards"
        let check = try await runCommand("promtool", ["check", "rules", "\(root)/rules/pgclone.rules.yml"])
        #expect(check.exitCode == 0, "\(check)")
        let tests = try await runCommand(
            "bash",
            ["-c", "cd '\(root)/tests' && promtool test rules pgclone.rules.test.yml"]
        )
        #expect(tests.exitCode == 0, "\(tests)")
        #expect(tests.stdout.contains("SUCCESS"))
    }

    @Test func textfilesAreWrittenForNodeExporter() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("mtext")
        try await server.createDatabase(source)
        let directory = try pgclone.makeDirectory("textfiles")
        let ok = try await pgclone.run(["dump", "--database", server.url(source), "--metrics-textfile", directory])
        #expect(ok.exitCode == 0, "\(ok)")
        let summaryFile = "\(directory)/pgclone_dump_\(source).default.prom"
        let successFile = "\(directory)/pgclone_dump_\(source).default_success.prom"
        let summary = try String(contentsOfFile: summaryFile, encoding: .utf8)
        let success = try String(contentsOfFile: successFile, encoding: .utf8)
        #expect(try await promtoolCheckMetrics(summary).exitCode == 0)
        #expect(try await promtoolCheckMetrics(success).exitCode == 0)
        #expect(summary.contains("outcome=\"success\"} 1"))
        #expect(!summary.contains("pgclone_job_last_success_timestamp_seconds"))
        #expect(
            success.contains(
                "pgclone_job_last_success_timestamp_seconds{command=\"dump\",database=\"\(source)\",config=\"default\"}"
            )
        )

        // A failed run rewrites the summary but leaves the last success alone.
        let failed = try await pgclone.run([
            "dump", "--database", server.url(source), "--config", "default", "--pre-dump-hook", "exit 1",
            "--metrics-textfile", directory,
        ])
        #expect(failed.exitCode == 1)
        #expect(try String(contentsOfFile: summaryFile, encoding: .utf8).contains("outcome=\"hook_failed\"} 1"))
        #expect(try String(contentsOfFile: successFile, encoding: .utf8) == success)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == [
                "pgclone_dump_\(source).default.prom", "pgclone_dump_\(source).default_success.prom",
            ]
        )

        // A run killed outright stays visible as running (written at its start), as on a Pushgateway.
        let hookStarted = pgclone.directory + "/hook-started"
        async let killed = pgclone.run([
            "dump", "--database", server.url(source), "--config", "default", "--pre-dump-hook",
            "touch \(hookStarted); sleep 60",
            "--metrics-textfile", directory,
        ])
        try await pgclone.waitForFile(hookStarted)
        pgclone.signal(SIGKILL)
        _ = try await killed
        let running = try String(contentsOfFile: summaryFile, encoding: .utf8)
        #expect(running.contains("outcome=\"running\"} 1"), "\(running)")
        #expect(try await promtoolCheckMetrics(running).exitCode == 0)
        #expect(try String(contentsOfFile: successFile, encoding: .utf8) == success)
    }

    @Test func aPushgatewayPasswordIsNeverShown() async throws {
        let pgclone = try PGCloneHarness()
        let source = TestEnvironment.uniqueName("mpush")
        try await pgclone.server.createDatabase(source)
        // Nothing listens on port 9: the push fails and says so, without the password.
        let url = "http://metrics:s3cr3t-pw@127.0.0.1:9/"
        for format in ["text", "json"] {
            let result = try await pgclone.run([
                "dump", "--database", pgclone.server.url(source), "--pushgateway", url, "--log-format", format,
            ])
            #expect(result.exitCode == 0, "\(result)")
            #expect(!result.stderr.contains("s3cr3t-pw"), "\(result)")
            #expect(result.stderr.contains("http://metrics:****@127.0.0.1:9/"), "\(result)")
        }
    }

    @Test func thePushgatewayKeepsTheLastSuccessAndShowsKilledRuns() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let port = try await freePort()
        let gateway = try await BackgroundProcess.start(
            "prometheus-pushgateway",
            ["--web.listen-address=127.0.0.1:\(port)"]
        )
        defer { gateway.stop() }
        let url = "http://127.0.0.1:\(port)"
        try await waitUntilServing("\(url)/metrics")
        let source = TestEnvironment.uniqueName("mpush")
        try await server.createDatabase(source)

        let ok = try await pgclone.run(["dump", "--database", server.url(source), "--pushgateway", url])
        #expect(ok.exitCode == 0, "\(ok)")
        let lastSuccess = { () async throws -> String? in
            try await httpGet("\(url)/metrics").body.split(separator: "\n")
                .first {
                    $0.hasPrefix("pgclone_job_last_success_timestamp_seconds{") && $0.contains("database=\"\(source)\"")
                }
                .map { String($0.split(separator: " ").last!) }
        }
        let first = try #require(try await lastSuccess())
        let failed = try await pgclone.run([
            "dump", "--database", server.url(source), "--config", "default", "--pre-dump-hook", "exit 1",
            "--pushgateway", url,
        ])
        #expect(failed.exitCode == 1)
        let after = try await httpGet("\(url)/metrics").body
        #expect(try await lastSuccess() == first)
        #expect(
            after.contains(
                """
                pgclone_job_outcome{command=\"dump\",config=\"default\",database=\"\(source)\",\
                instance=\"\",job=\"pgclone\",outcome=\"hook_failed\"} \
                1
                """
            ),
            "\(after.prefix(3000))"
        )

        // A run killed outright stays visible as running: only its start was pushed.
        let killed = TestEnvironment.uniqueName("mkill")
        try await server.createDatabase(killed)
        let marker = pgclone.directory + "/hook-running"
        async let running = pgclone.run([
            "dump", "--database", server.url(killed), "--pre-dump-hook", "touch \(marker); sleep 60", "--pushgateway",
            url,
        ])
        while !FileManager.default.fileExists(atPath: marker) { try await Task.sleep(for: .milliseconds(20)) }
        pgclone.signal(SIGKILL)
        pgclone.signal(SIGKILL, processesMatching: ["sleep 60"])
        _ = try await running
        #expect(
            try await httpGet("\(url)/metrics").body.contains(
                "database=\"\(killed)\",instance=\"\",job=\"pgclone\",outcome=\"running\"} 1"
            )
        )
    }

    @Test func theBottleneckIsReadable() async throws {
        let pgclone = try PGCloneHarness()
        // Every fourth row restored waits 5 ms on a CHECK, 10 s in all: PostgreSQL is the slowest
        // step by far, even when a machine loaded by the other tests makes moto slow to answer.
        let dumped = try await pgclone.dumpToNewBucket(
            s3,
            prefix: "mslow",
            rows: 100,
            extraSQL: Fixtures.slowRestoreSQL(rows: 8000, milliseconds: 5)
        )
        var (environment, key) = (dumped.environment, dumped.key)
        // One ranged GET for the whole object: at 16 MiB, ranges of 256 KiB one at a time made 33
        // requests, and a moto slowed by the other tests kept the download busy longer than
        // PostgreSQL held pg_restore back.
        environment["PGCLONE_S3_PART_SIZE"] = "16MiB"
        let port = try await freePort()
        let target = TestEnvironment.uniqueName("mslow_dst")
        async let restoring = pgclone.run(
            [
                "restore", key, "--database", pgclone.server.url(target), "--metrics-address", "127.0.0.1:\(port)",
                "--metrics-linger", "30s", "--memory-limit", "16MiB", "--log-level", "debug",
            ],
            environment: environment
        )
        // The run's totals, read while pgclone lingers after it. A scrape that fails (before the
        // server is up, or once pgclone has gone: a loaded machine can leave a poll late) keeps
        // the last one that did not. (With a linger of 5 s, a full test run once had none succeed.)
        var (metrics, lastScrape) = ("", "")
        for _ in 0..<1200 where !metrics.contains("outcome=\"success\"} 1") {
            try await Task.sleep(for: .milliseconds(100))
            lastScrape = (try? await httpGet("http://127.0.0.1:\(port)/metrics").body) ?? "curl did not run"
            if lastScrape.contains("pgclone_step_backpressure_seconds_total") { metrics = lastScrape }
        }
        let restored = try await restoring
        #expect(restored.exitCode == 0)
        try #require(!metrics.isEmpty, "no scrape of 127.0.0.1:\(port) succeeded; the last: \(lastScrape)\n\(restored)")
        // The debug log's summary, which bench.sh prints: each step's figures, and the bottleneck
        // they make. PostgreSQL's 10 s of CHECK waits dwarf what moving 16 MiB keeps pgclone busy,
        // also on a machine the other tests load; only pg_restore's stdin comes nearer, busy while
        // PostgreSQL works through what pipes and sockets held after the last write (2.6 s against
        // 8.6 s of waiting here): the summary names PostgreSQL.
        let summary = restored.stderrLines.filter { $0.hasPrefix("pgclone: debug: step ") }
        let steps = Self.stepFigures(summary)
        #expect(steps.count == summary.count, "unreadable figures: \(summary)")
        #expect(Set(steps.keys) == ["download", "decompress", "restore_stdin"], "\(summary)")
        #expect(
            restored.stderrLines.contains("pgclone: debug: bottleneck over the run: PostgreSQL (pg_restore)"),
            "\(restored)"
        )
        // What makes it so: writing into pg_restore waited longer than any step was busy.
        let written = try #require(steps["restore_stdin"])
        #expect(written.backpressure > 1, "\(summary)")
        #expect(steps.values.allSatisfy { $0.busy < written.backpressure }, "\(summary)")
        func value(_ name: String, _ step: String) -> Double {
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("\(name){step=\"\(step)\"} ") }
            return Double(line?.split(separator: " ").last ?? "") ?? -1
        }
        // PostgreSQL is the limit: writing into pg_restore's stdin waits (backpressure) more than
        // it waits for input, and the steps upstream wait for room — the download step too. (With
        // a 16 MiB limit the buffers are small next to the 16 MiB archive.)
        // (How long restore_stdin starved is not compared: on a machine the other tests load,
        // the stages before it are starved of CPU for seconds too.)
        let restoreWaiting = value("pgclone_step_backpressure_seconds_total", "restore_stdin")
        #expect(restoreWaiting > 1, "\(metrics)")
        #expect(value("pgclone_step_backpressure_seconds_total", "decompress") > 0.1)
        #expect(value("pgclone_step_backpressure_seconds_total", "download") > 0.1)
    }
}

extension MetricsDeliveryTests {
    /// A restore in pieces: its sessions count their own time into the steps (summed over them),
    /// so a slow server shows as restore_stdin's backpressure, and the summary names PostgreSQL
    /// and the COPY sessions, not whichever step ran longest.
    @Test func theBottleneckOfARestoreInPiecesIsReadable() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("mslow_pieces")
        try await server.createDatabase(source)
        // 3 s of CHECK waits in 6 MiB of rows: two pieces.
        try await server.psql(Fixtures.slowRestoreSQL(rows: 3000, milliseconds: 4), database: source)
        let key = try await pgclone.dump(source)
        let target = TestEnvironment.uniqueName("mslow_pieces_dst")
        let restored = try await pgclone.restore(key, into: target, ["--jobs", "2", "--log-level", "debug"])
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(
            restored.stderr.contains("pgclone: restoring in 2 pieces of 1 table with 2 sessions (--jobs=2)"),
            "\(restored)"
        )
        let summary = restored.stderrLines.filter { $0.hasPrefix("pgclone: debug: step ") }
        let steps = Self.stepFigures(summary)
        #expect(Set(steps.keys) == ["download", "decompress", "restore_stdin"], "\(summary)")
        let load = try #require(steps["restore_stdin"])
        // The COPYs waited for the CHECKs; decompressing took a fraction of that.
        #expect(load.backpressure > 2, "\(summary)")
        #expect(try #require(steps["decompress"]).busy < load.backpressure / 4, "\(summary)")
        // Reading 6 MiB from local storage is over long before the loading: its clock stops then.
        #expect(try #require(steps["download"]).busy < load.backpressure / 4, "\(summary)")
        #expect(
            restored.stderrLines.contains("pgclone: debug: bottleneck over the run: PostgreSQL (COPY sessions)"),
            "\(restored)"
        )
        #expect(try await server.tableFingerprints(target) == server.tableFingerprints(source))
    }

    /// The seconds on the run summary's `step <name>: … busy 0.30 s (…), starved 0.50 s,
    /// backpressure 9.80 s` lines, by step; a line whose figures do not parse is left out.
    static func stepFigures(_ lines: [String]) -> [String: (busy: Double, starved: Double, backpressure: Double)] {
        var figures: [String: (busy: Double, starved: Double, backpressure: Double)] = [:]
        for line in lines {
            guard let start = line.range(of: "step "), let colon = line[start.upperBound...].firstIndex(of: ":") else {
                continue
            }
            let figuresText = line[colon...]
            func seconds(_ label: String) -> Double? {
                guard let range = figuresText.range(of: " \(label) ") else { return nil }
                let number = figuresText[range.upperBound...].prefix { $0 != " " }
                return figuresText[range.upperBound...].dropFirst(number.count).hasPrefix(" s") ? Double(number) : nil
            }
            guard let busy = seconds("busy"), let starved = seconds("starved"),
                let backpressure = seconds("backpressure")
            else { continue }
            figures[String(line[start.upperBound..<colon])] = (busy, starved, backpressure)
        }
        return figures
    }

    /// The dashboards' queries, from their JSON (so a panel added later is checked too), with the
    /// variables as Grafana would fill them in.
    static func dashboardQueries() throws -> [(panel: String, query: String)] {
        let directory = FileManager.default.currentDirectoryPath + "/dashboards"
        var queries: [(String, String)] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: directory).filter({ $0.hasSuffix(".json") })
            .sorted()
        {
            let json =
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(file)")))
                as? [String: Any]
            for panel in json?["panels"] as? [[String: Any]] ?? [] {
                for target in panel["targets"] as? [[String: Any]] ?? [] {
                    guard let expr = target["expr"] as? String else { continue }
                    let query = expr.replacingOccurrences(of: "$__rate_interval", with: "10s")
                        .replacingOccurrences(of: "$job", with: "pgclone")
                        .replacingOccurrences(of: "$instance", with: ".*")
                        .replacingOccurrences(of: "$database", with: ".*")
                        .replacingOccurrences(of: "$command", with: ".*")
                    queries.append(("\(file): \(panel["title"] as? String ?? "?")", query))
                }
            }
        }
        return queries
    }

    @Test func prometheusAnswersEveryDashboardQueryAfterARealDumpAndRestore() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let metricsPort = try await freePort()
        let prometheusPort = try await freePort()
        let directory = try pgclone.makeDirectory("prometheus")
        let rules = FileManager.default.currentDirectoryPath + "/dashboards/rules/pgclone.rules.yml"
        try """
        global:
          scrape_interval: 1s
          evaluation_interval: 1s
        rule_files: ["\(rules)"]
        scrape_configs:
          - job_name: pgclone
            static_configs:
              - targets: ["127.0.0.1:\(metricsPort)"]
        """.write(toFile: "\(directory)/prometheus.yml", atomically: true, encoding: .utf8)
        let prometheus = try await BackgroundProcess.start(
            "prometheus",
            [
                "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
                "--web.listen-address=127.0.0.1:\(prometheusPort)",
            ]
        )
        defer { prometheus.stop() }
        let api = "http://127.0.0.1:\(prometheusPort)"
        try await waitUntilServing("\(api)/-/ready", seconds: 30)

        let source = TestEnvironment.uniqueName("mprom")
        let target = TestEnvironment.uniqueName("mprom_dst")
        try await server.createDatabase(source)
        try await server.psql(
            "CREATE TABLE t AS SELECT i, md5(i::text) AS h FROM generate_series(1, 60000) AS i",
            database: source
        )
        let bucket = try await s3.makeBucket()
        var environment = s3.environment(location: "s3://\(bucket)")
        environment["PGCLONE_S3_PART_SIZE"] = "256KiB"
        let metricsFlags = ["--metrics-address", "127.0.0.1:\(metricsPort)"]
        let dumped = try await pgclone.run(
            ["dump", "--database", server.url(source), "--metrics-linger", "4s"] + metricsFlags,
            environment: environment
        )
        #expect(dumped.exitCode == 0, "\(dumped)")
        // In pieces (`--jobs`), so that the COPY sessions' panels have data too.
        let restored = try await pgclone.run(
            ["restore", source, "--database", server.url(target), "--pre-swap-hook", "true", "--jobs", "2"]
                // Long enough for several scrapes of its final state, even when a loaded machine
                // delays some (all the job's panels had no data once, under the whole suite).
                + metricsFlags + ["--metrics-linger", "10s"],
            environment: environment
        )
        #expect(restored.exitCode == 0, "\(restored)")
        // The last instant Prometheus saw the restore up: inside its linger, with its final state
        // scraped, and before its first failed scrape made the gauges stale. (The clock read once
        // the run had returned, less 1.5 s, was past that on a loaded machine.)
        let now = Date().timeIntervalSince1970
        let up = try await runCommand(
            "curl",
            [
                "-sS", "-G", "\(api)/api/v1/query_range", "--data-urlencode", "query=up{job=\"pgclone\"} == 1",
                "--data-urlencode", "start=\(now - 300)", "--data-urlencode", "end=\(now)", "--data-urlencode",
                "step=0.25",
            ]
        )
        let series = (try JSONSerialization.jsonObject(with: Data(up.stdout.utf8)) as? [String: Any])
            .flatMap { ($0["data"] as? [String: Any])?["result"] as? [[String: Any]] }
        let time = try #require(
            (series?.first?["values"] as? [[Any]])?.last?.first as? Double,
            "Prometheus never saw pgclone up: \(up.stdout.prefix(2000))"
        )

        func query(_ promql: String) async throws -> (status: String, results: Int) {
            let result = try await runCommand(
                "curl",
                [
                    "-sS", "-G", "\(api)/api/v1/query", "--data-urlencode", "query=\(promql)", "--data-urlencode",
                    "time=\(time)",
                ]
            )
            let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            let data = json?["data"] as? [String: Any]
            return (json?["status"] as? String ?? result.stdout, (data?["result"] as? [Any])?.count ?? 0)
        }
        let queries = try Self.dashboardQueries()
        #expect(queries.count >= 29)
        for (panel, promql) in queries {
            let (status, results) = try await query(promql)
            #expect(status == "success", "\(panel): \(status)")
            #expect(results > 0, "\(panel) has no data: \(promql)")
        }
        // The shipped rules load and evaluate.
        let rulesJSON = try await runCommand("curl", ["-sS", "\(api)/api/v1/rules"]).stdout
        #expect(rulesJSON.contains("\"health\":\"ok\""))
        #expect(!rulesJSON.contains("\"health\":\"err\""), "\(rulesJSON.prefix(2000))")
    }
}
