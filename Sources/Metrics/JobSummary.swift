import Glibc
package import Prometheus
import Synchronization

/// The summary of one run (labels `command`, `database`, `config`): what the batch-job guidance
/// says to keep — start, end and last success times, duration, outcome, object size, phase
/// durations, hooks, pg_restore errors, the swap's unavailability. All gauges.
package final class JobSummary: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let successRegistry: PrometheusCollectorRegistry
    private let labels: [(String, String)]
    private let started = ContinuousClock.now
    private let phases = Mutex<[Phase: Double]>([:])
    /// The phases running now, innermost last, each with the seconds of the phases that ran
    /// inside it.
    private let runningPhases = Mutex<[(phase: Phase, nested: Double)]>([])

    /// The phase running now (the innermost), for progress.
    package var currentPhase: Phase? { runningPhases.withLock { $0.last?.phase } }

    init(
        command: Command,
        database: String,
        config: String,
        storage: String,
        registry: PrometheusCollectorRegistry,
        success: PrometheusCollectorRegistry
    ) {
        self.registry = registry
        self.successRegistry = success
        labels = [("command", command.rawValue), ("database", database), ("config", config)]
        registry.makeGauge(
            descriptor: .init(
                namespace: "pgclone",
                metricName: "job",
                unitName: "info",
                helpText: "What this pgclone process works on; always 1"
            ),
            labels: labels + [("storage", storage)]
        ).set(to: 1)
        gauge("start_timestamp", "seconds", "Start of the run, in Unix time").set(to: Self.now())
        setOutcome(.running)
        for phase in Phase.allCases { phaseGauge(phase).set(to: 0) }
        for phase in HookPhase.allCases {
            for outcome in HookOutcome.allCases { hookGauge(phase, outcome).set(to: 0) }
        }
        gauge("restore_errors", "", "Errors pg_restore reported in the run").set(to: 0)
        gauge("swap_unavailable", "seconds", "Seconds the target refused connections during the swap").set(to: 0)
        gauge("swap_terminated_sessions", "", "Sessions terminated on the target before the swap").set(to: 0)
        gauge("object", "bytes", "Size of the stored object written (dump) or read (restore)").set(to: 0)
    }

    private func gauge(_ name: String, _ unit: String, _ help: String, extra: [(String, String)] = []) -> Gauge {
        registry.makeGauge(
            descriptor: .init(namespace: "pgclone", metricName: "job_\(name)", unitName: unit, helpText: help),
            labels: labels + extra
        )
    }

    private func phaseGauge(_ phase: Phase) -> Gauge {
        gauge(
            "phase_duration",
            "seconds",
            "Wall seconds of each protocol phase of the run",
            extra: [("phase", phase.rawValue)]
        )
    }

    private func hookGauge(_ phase: HookPhase, _ outcome: HookOutcome) -> Gauge {
        gauge(
            "hooks",
            "",
            "Hooks finished in the run, by phase and outcome",
            extra: [("phase", phase.rawValue), ("outcome", outcome.rawValue)]
        )
    }

    private func setOutcome(_ outcome: Outcome) {
        for candidate in Outcome.allCases {
            gauge(
                "outcome",
                "",
                "How the run ended: 1 for the outcome, 0 for the others (running while in progress)",
                extra: [("outcome", candidate.rawValue)]
            )
            .set(to: candidate == outcome ? 1 : 0)
        }
    }

    /// Times `body` as `phase` (added to what the phase already took). A phase run inside another
    /// counts for itself only: the outer one's time leaves it out, so the phases add up to the
    /// run's wall time (the restore's parts in a restore in pieces).
    package func phase<Result>(_ phase: Phase, _ body: () async throws -> Result) async rethrows -> Result {
        let start = ContinuousClock.now
        runningPhases.withLock { $0.append((phase, 0)) }
        defer {
            let seconds = (ContinuousClock.now - start).seconds
            let nested = runningPhases.withLock { running in
                let nested = running.popLast()?.nested ?? 0
                if !running.isEmpty { running[running.count - 1].nested += seconds }
                return nested
            }
            phaseGauge(phase).increment(by: seconds - nested)
            phases.withLock { $0[phase, default: 0] += seconds - nested }
        }
        return try await body()
    }

    package func setObjectBytes(_ bytes: Int) {
        gauge("object", "bytes", "Size of the stored object written (dump) or read (restore)").set(to: Double(bytes))
    }

    package func setRestoreErrors(_ count: Int) {
        gauge("restore_errors", "", "Errors pg_restore reported in the run").set(to: Double(count))
    }

    package func setSwap(unavailable: Duration, terminatedSessions: Int) {
        gauge("swap_unavailable", "seconds", "Seconds the target refused connections during the swap").set(
            to: unavailable.seconds
        )
        gauge("swap_terminated_sessions", "", "Sessions terminated on the target before the swap").set(
            to: Double(terminatedSessions)
        )
    }

    func hookFinished(_ phase: HookPhase, outcome: HookOutcome) {
        hookGauge(phase, outcome).increment()
    }

    /// Ends the run: end time, duration, outcome, and on success the last-success time.
    package func finish(_ outcome: Outcome) {
        let now = Self.now()
        gauge("end_timestamp", "seconds", "End of the last run, successful or not, in Unix time").set(to: now)
        gauge("duration", "seconds", "Wall seconds of the last finished run").set(
            to: (ContinuousClock.now - started).seconds
        )
        setOutcome(outcome)
        if outcome == .success {
            successRegistry.makeGauge(
                descriptor: .init(
                    namespace: "pgclone",
                    metricName: "job_last_success_timestamp",
                    unitName: "seconds",
                    helpText: "End of the last successful run, in Unix time"
                ),
                labels: labels
            ).set(to: now)
        }
    }

    /// Seconds per phase so far (phases that ran only), for `--json`.
    package var phaseDurations: [Phase: Double] { phases.withLock { $0 } }

    /// Seconds since the run started.
    package var elapsed: Double { (ContinuousClock.now - started).seconds }

    /// The labels that identify the run, for a Pushgateway's grouping key or a textfile's name.
    package var command: String { labels[0].1 }
    package var database: String { labels[1].1 }
    package var config: String { labels[2].1 }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
