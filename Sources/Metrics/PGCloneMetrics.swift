package import Prometheus
import Synchronization

/// pgclone's metrics (METRICS.md §4), registered on swift-prometheus registries with help text on
/// every family (the swift-metrics factory route cannot give any; PLATFORM.md §3):
///
/// - the live pipeline (`pgclone_step_*`, `pgclone_buffer_*`, `pgclone_s3_*`, `process_*`), for
///   scrapes while a job runs;
/// - the job summary (`pgclone_job_*`, `pgclone_build_info`), also what is pushed to a Pushgateway
///   or written to a node_exporter textfile. `pgclone_job_last_success_timestamp_seconds` has a
///   registry of its own: a failed run must never push or write it.
///
/// Stages record into the handles where the work happens; the CLI decides how the result is
/// delivered.
package final class PGCloneMetrics: Sendable {
    package let live = PrometheusCollectorRegistry()
    package let summary = PrometheusCollectorRegistry()
    package let success = PrometheusCollectorRegistry()

    private let steps: [Step: StepMeter]
    private let buffers: [Buffer: BufferMeter]
    package let s3: S3Meter
    private let process: ProcessMeter
    private let sourceObjectBytes: Gauge
    private let hookDurations: [HookPhase: DurationHistogram]
    private let job = Mutex<JobSummary?>(nil)
    private let workers = Mutex<[Int: WorkerMeter]>([:])

    package struct BuildInfo: Sendable {
        package var version: String
        package var libraries: [(name: String, version: String)]

        package init(version: String, libraries: [(name: String, version: String)]) {
            self.version = version
            self.libraries = libraries
        }
    }

    package init(build: BuildInfo) {
        let live = self.live
        summary.makeGauge(
            descriptor: .init(
                namespace: "pgclone",
                metricName: "build",
                unitName: "info",
                helpText: "pgclone's version and the versions of the libraries it runs with; always 1"
            ),
            labels: [("version", build.version)] + build.libraries.map { ("\($0.name)_version", $0.version) }
        ).set(to: 1)
        steps = Dictionary(uniqueKeysWithValues: Step.allCases.map { ($0, StepMeter(step: $0, registry: live)) })
        buffers = Dictionary(
            uniqueKeysWithValues: Buffer.allCases.map { ($0, BufferMeter(buffer: $0, registry: live)) }
        )
        s3 = S3Meter(registry: live)
        process = ProcessMeter(registry: live)
        sourceObjectBytes = live.makeGauge(
            descriptor: .init(
                namespace: "pgclone",
                metricName: "source_object",
                unitName: "bytes",
                helpText: "Size of the stored object being restored (0 until known), for progress"
            )
        )
        hookDurations = Dictionary(
            uniqueKeysWithValues: HookPhase.allCases.map { phase in
                (
                    phase,
                    live.makeDurationHistogram(
                        descriptor: .init(
                            namespace: "pgclone",
                            metricName: "hook_duration",
                            unitName: "seconds",
                            helpText: "Duration of each hook run"
                        ),
                        labels: [("phase", phase.rawValue)],
                        buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200].map { Duration.seconds($0) }
                    )
                )
            }
        )
        let budget = [("s3_parts", 0), ("buffers", 0), ("zstd_window", 0), ("other", 0)]
        for (component, _) in budget { memoryBudget(component).set(to: 0) }
    }

    package func step(_ step: Step) -> StepMeter { steps[step]! }
    package func buffer(_ buffer: Buffer) -> BufferMeter { buffers[buffer]! }

    /// COPY session `number` (from 1) of a restore in pieces; its series appear when first asked for.
    package func worker(_ number: Int) -> WorkerMeter {
        workers.withLock { workers in
            if let meter = workers[number] { return meter }
            let meter = WorkerMeter(worker: number, registry: live)
            workers[number] = meter
            return meter
        }
    }

    /// What writes into PostgreSQL in this run, for naming it the bottleneck: pg_restore, or
    /// pgclone's COPY sessions once a restore in pieces has started them.
    package var restoreClient: String {
        workers.withLock { $0.isEmpty } ? "pg_restore" : "COPY sessions"
    }

    /// The COPY sessions' totals so far, by session number.
    package var workerTotals: [(worker: Int, totals: WorkerMeter.Totals)] {
        workers.withLock { $0.values.map { ($0.worker, $0.snapshot) } }.sorted { $0.worker < $1.worker }
    }

    private func memoryBudget(_ component: String) -> Gauge {
        live.makeGauge(
            descriptor: .init(
                namespace: "pgclone",
                metricName: "memory_budget",
                unitName: "bytes",
                helpText: "Planned memory of pgclone, by budget term; the sum is the planned ceiling"
            ),
            labels: [("component", component)]
        )
    }

    /// The fixed terms of the memory budget (DESIGN.md "Memory").
    package func setMemoryBudget(_ terms: [(component: String, bytes: Int)]) {
        for term in terms { memoryBudget(term.component).set(to: Double(term.bytes)) }
    }

    package func setSourceObjectBytes(_ bytes: Int) {
        sourceObjectBytes.set(to: Double(bytes))
        sourceBytes.withLock { $0 = bytes }
    }

    /// The stored object's size, for progress (0 until known).
    package var sourceObjectSize: Int { sourceBytes.withLock { $0 } }
    private let sourceBytes = Mutex(0)

    package func recordHook(_ phase: HookPhase, duration: Duration, outcome: HookOutcome) {
        hookDurations[phase]!.record(duration)
        currentJob?.hookFinished(phase, outcome: outcome)
    }

    // MARK: Job summary

    /// Starts the job summary of this run.
    @discardableResult
    package func startJob(command: Command, database: String, config: String, storage: String) -> JobSummary {
        let summary = JobSummary(
            command: command,
            database: database,
            config: config,
            storage: storage,
            registry: self.summary,
            success: success
        )
        job.withLock { $0 = summary }
        return summary
    }

    /// The run's summary, once the pipeline knows what it is working on.
    package var currentJob: JobSummary? { job.withLock { $0 } }

    /// Runs `body`, timed as `phase` of the current job (untimed before the job has begun).
    package func phase<Result>(_ phase: Phase, _ body: () async throws -> Result) async rethrows -> Result {
        guard let job = currentJob else { return try await body() }
        return try await job.phase(phase, body)
    }

    // MARK: Rendering

    /// The whole exposition (Prometheus text format 0.0.4), process metrics read just now.
    package func render() -> [UInt8] {
        process.update()
        // A step in the middle of a long busy stretch shows it as it goes.
        for step in steps.values { step.flush() }
        return summary.emitToBuffer() + success.emitToBuffer() + live.emitToBuffer()
    }

    /// The job summary alone, for a Pushgateway or a textfile; `withSuccess` adds the last-success
    /// timestamp (set only by a successful run).
    package func renderSummary(withSuccess: Bool) -> [UInt8] {
        summary.emitToBuffer() + (withSuccess ? success.emitToBuffer() : [])
    }

    package func renderSuccess() -> [UInt8] {
        success.emitToBuffer()
    }
}

extension MetricNameDescriptor {
    init(namespace: String, metricName: String, unitName: String, helpText: String) {
        self.init(namespace: namespace, subsystem: nil, metricName: metricName, unitName: unitName, helpText: helpText)
    }
}
