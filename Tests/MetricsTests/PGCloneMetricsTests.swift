import PGCloneMetrics
import Testing

@Suite struct PGCloneMetricsTests {
    static let build = PGCloneMetrics.BuildInfo(version: "1.2.3", libraries: [("libpq", "15.18")])

    private func exposition(_ metrics: PGCloneMetrics) -> String {
        String(decoding: metrics.render(), as: UTF8.self)
    }

    @Test func everyFamilyHasHelpAndType() {
        let metrics = PGCloneMetrics(build: Self.build)
        metrics.startJob(command: .restore, database: "app", config: "default", storage: "s3")
        metrics.s3.request(.getObject, status: 206, duration: .milliseconds(30), sentBytes: 0, receivedBytes: 100)
        let text = exposition(metrics)
        let families = [
            "pgclone_build_info", "pgclone_job_info", "pgclone_job_start_timestamp_seconds", "pgclone_job_outcome",
            "pgclone_job_phase_duration_seconds", "pgclone_job_hooks", "pgclone_job_restore_errors",
            "pgclone_job_swap_unavailable_seconds", "pgclone_job_swap_terminated_sessions", "pgclone_job_object_bytes",
            "pgclone_step_input_bytes_total", "pgclone_step_output_bytes_total", "pgclone_step_busy_seconds_total",
            "pgclone_step_starved_seconds_total", "pgclone_step_backpressure_seconds_total", "pgclone_step_active",
            "pgclone_buffer_used_bytes", "pgclone_buffer_capacity_bytes", "pgclone_memory_budget_bytes",
            "pgclone_source_object_bytes", "pgclone_s3_requests_total", "pgclone_s3_retries_total",
            "pgclone_s3_request_duration_seconds", "pgclone_s3_received_bytes_total", "pgclone_s3_sent_bytes_total",
            "pgclone_s3_parts_in_flight", "pgclone_s3_parts_in_flight_limit", "pgclone_hook_duration_seconds",
            "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "process_max_fds",
            "process_start_time_seconds", "process_virtual_memory_bytes",
        ]
        for family in families {
            #expect(text.contains("# HELP \(family) "), "\(family) has no HELP")
            #expect(text.contains("# TYPE \(family) "), "\(family) has no TYPE")
        }
        // Series known in advance are there at 0 from the start.
        #expect(text.contains("pgclone_step_output_bytes_total{step=\"restore_stdin\"} 0"))
        #expect(
            text.contains(
                "pgclone_job_outcome{command=\"restore\",database=\"app\",config=\"default\",outcome=\"running\"} 1"
            )
        )
        #expect(text.contains("pgclone_s3_retries_total{operation=\"GetObject\",reason=\"throttled\"} 0"))
    }

    @Test func lastSuccessOnlyAfterSuccessAndOnlyWithIt() {
        let metrics = PGCloneMetrics(build: Self.build)
        let job = metrics.startJob(command: .dump, database: "app", config: "default", storage: "local")
        job.finish(.hookFailed)
        var summary = String(decoding: metrics.renderSummary(withSuccess: true), as: UTF8.self)
        #expect(!summary.contains("pgclone_job_last_success_timestamp_seconds"))
        #expect(summary.contains("outcome=\"hook_failed\"} 1"))
        let next = metrics.startJob(command: .dump, database: "app", config: "default", storage: "local")
        next.finish(.success)
        summary = String(decoding: metrics.renderSummary(withSuccess: false), as: UTF8.self)
        #expect(!summary.contains("pgclone_job_last_success_timestamp_seconds"))
        #expect(
            String(decoding: metrics.renderSuccess(), as: UTF8.self).contains(
                "pgclone_job_last_success_timestamp_seconds{command=\"dump\""
            )
        )
    }

    @Test func theRunningPhaseIsWhatProgressNames() async {
        let metrics = PGCloneMetrics(build: Self.build)
        let job = metrics.startJob(command: .restore, database: "app", config: "default", storage: "local")
        #expect(job.currentPhase == nil)
        await job.phase(.swap) {
            #expect(job.currentPhase == .swap)
            await job.phase(.cleanup) { #expect(job.currentPhase == .cleanup) }
            #expect(job.currentPhase == .swap)
        }
        #expect(job.currentPhase == nil)
        #expect(job.phaseDurations.keys.sorted { $0.rawValue < $1.rawValue } == [.cleanup, .swap])
    }

    @Test func hostileLabelValuesAreEscaped() {
        let metrics = PGCloneMetrics(build: Self.build)
        metrics.startJob(command: .restore, database: "we\"ird\\db\nx", config: "default", storage: "local")
        #expect(exposition(metrics).contains(#"database="we\"ird\\db\nx""#))
    }

    @Test func stepTimeSplitsIntoBusyStarvedAndBackpressure() async throws {
        let metrics = PGCloneMetrics(build: Self.build)
        let step = metrics.step(.decompress)
        let start = ContinuousClock.now
        step.started()
        step.waiting(true, starving: true)
        try await Task.sleep(for: .milliseconds(60))
        step.waiting(false, starving: true)
        try await Task.sleep(for: .milliseconds(60))
        step.produced(1000)
        step.waiting(true, starving: false)
        try await Task.sleep(for: .milliseconds(60))
        step.waiting(false, starving: false)
        step.finished()
        let wall = ContinuousClock.now - start
        func value(_ name: String) -> Double {
            let line = exposition(metrics).split(separator: "\n").first {
                $0.hasPrefix("\(name){step=\"decompress\"} ")
            }
            return Double(line?.split(separator: " ").last ?? "") ?? -1
        }
        #expect(value("pgclone_step_starved_seconds_total") >= 0.05)
        #expect(value("pgclone_step_backpressure_seconds_total") >= 0.05)
        #expect(value("pgclone_step_busy_seconds_total") >= 0.05)
        // The three add up to the step's wall time.
        let accounted =
            value("pgclone_step_busy_seconds_total") + value("pgclone_step_starved_seconds_total")
            + value("pgclone_step_backpressure_seconds_total")
        let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        #expect(abs(accounted - seconds) < 0.01, "\(accounted) of \(seconds)")
        #expect(value("pgclone_step_output_bytes_total") == 1000)
        #expect(value("pgclone_step_active") == 0)
    }
}

extension PGCloneMetricsTests {
    @Test func eachCopySessionHasSeriesOfItsOwn() {
        let metrics = PGCloneMetrics(build: Self.build)
        #expect(!exposition(metrics).contains("pgclone_restore_worker"), "no series before a restore in pieces")
        let first = metrics.worker(1)
        let second = metrics.worker(2)
        #expect(metrics.worker(1) === first, "one meter per session")
        first.started()
        second.started()
        first.waited(.milliseconds(250))
        first.sent(bytes: 4 << 20, took: .milliseconds(1500))
        first.sent(bytes: 1 << 20, took: .milliseconds(500))
        second.waited(.seconds(2))
        second.finished()
        let text = exposition(metrics)
        for line in [
            "pgclone_restore_worker_pieces_total{worker=\"1\"} 2",
            "pgclone_restore_worker_input_bytes_total{worker=\"1\"} 5242880",
            "pgclone_restore_worker_busy_seconds_total{worker=\"1\"} 2.0",
            "pgclone_restore_worker_starved_seconds_total{worker=\"1\"} 0.25",
            "pgclone_restore_worker_active{worker=\"1\"} 1.0",
            "pgclone_restore_worker_pieces_total{worker=\"2\"} 0",
            "pgclone_restore_worker_starved_seconds_total{worker=\"2\"} 2.0",
            "pgclone_restore_worker_active{worker=\"2\"} 0.0",
        ] {
            #expect(text.split(separator: "\n").contains { $0 == line }, "missing: \(line)\n\(text)")
        }
        for family in [
            "pgclone_restore_worker_pieces_total", "pgclone_restore_worker_input_bytes_total",
            "pgclone_restore_worker_busy_seconds_total", "pgclone_restore_worker_starved_seconds_total",
            "pgclone_restore_worker_active",
        ] {
            #expect(text.contains("# HELP \(family) "), "\(family) has no HELP")
        }
        #expect(
            metrics.workerTotals.map(\.worker) == [1, 2]
                && metrics.workerTotals[0].totals == .init(pieces: 2, input: 5 << 20, busy: 2, starved: 0.25)
        )
    }
}
