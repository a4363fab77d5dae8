import Prometheus
import Synchronization

/// One pipeline step's live metrics: bytes in and out, and its wall time split into busy, starved
/// (waiting for input) and backpressure (waiting for room downstream), so `rate()` of each is a
/// share of time and the bottleneck is the busiest step.
package final class StepMeter: Sendable {
    let step: Step
    private let input: Counter
    private let output: Counter
    private let busy: Counter
    private let starved: Counter
    private let backpressure: Counter
    private let active: Gauge

    private struct Clock {
        /// Start of the busy stretch not yet counted; `nil` while waiting or inactive.
        var mark: ContinuousClock.Instant?
        var waits = 0
        var waitStart: [ContinuousClock.Instant] = []
    }

    private let clock = Mutex(Clock())
    /// Running totals the progress display reads (Prometheus counters cannot be read back).
    private let totals = Mutex(Totals())

    package struct Totals: Sendable {
        package var output = 0
        package var busy = 0.0
        package var starved = 0.0
        package var backpressure = 0.0
        package var active = false

        package init(
            output: Int = 0,
            busy: Double = 0,
            starved: Double = 0,
            backpressure: Double = 0,
            active: Bool = false
        ) {
            self.output = output
            self.busy = busy
            self.starved = starved
            self.backpressure = backpressure
            self.active = active
        }
    }

    package var snapshot: Totals { totals.withLock { $0 } }

    init(step: Step, registry: PrometheusCollectorRegistry) {
        self.step = step
        func counter(_ name: String, _ unit: String, _ help: String) -> Counter {
            registry.makeCounter(
                descriptor: .init(namespace: "pgclone", metricName: "step_\(name)", unitName: unit, helpText: help),
                labels: [("step", step.rawValue)]
            )
        }
        input = counter("input", "bytes_total", "Bytes consumed by the pipeline step")
        output = counter("output", "bytes_total", "Bytes produced by the pipeline step")
        busy = counter("busy", "seconds_total", "Wall seconds the step was working")
        starved = counter("starved", "seconds_total", "Wall seconds the step waited for input")
        backpressure = counter("backpressure", "seconds_total", "Wall seconds the step waited for room downstream")
        active = registry.makeGauge(
            descriptor: .init(
                namespace: "pgclone",
                metricName: "step",
                unitName: "active",
                helpText: "1 while the step runs"
            ),
            labels: [("step", step.rawValue)]
        )
    }

    package func started() {
        active.set(to: 1)
        totals.withLock { $0.active = true }
        clock.withLock { $0.mark = .now }
    }

    package func finished() {
        flushBusy()
        clock.withLock { $0.mark = nil }
        active.set(to: 0)
        totals.withLock { $0.active = false }
    }

    /// Marks the step running or not without starting its clock: for a step that several sessions
    /// work in at once (a restore in pieces), which count their time with ``record(busy:starved:backpressure:)``.
    package func setActive(_ isActive: Bool) {
        active.set(to: isActive ? 1 : 0)
        totals.withLock { $0.active = isActive }
    }

    /// Counts time one of the step's sessions spent working, waiting for input and waiting for
    /// room downstream. Sessions count each their own: N of them at work count N seconds a second.
    package func record(busy: Duration = .zero, starved: Duration = .zero, backpressure: Duration = .zero) {
        let (busy, starved, backpressure) = (
            max(0, busy.seconds), max(0, starved.seconds), max(0, backpressure.seconds)
        )
        if busy > 0 { self.busy.increment(by: busy) }
        if starved > 0 { self.starved.increment(by: starved) }
        if backpressure > 0 { self.backpressure.increment(by: backpressure) }
        totals.withLock {
            $0.busy += busy
            $0.starved += starved
            $0.backpressure += backpressure
        }
    }

    package func consumed(_ bytes: Int) {
        input.increment(by: Int64(bytes))
        if step.isSink {
            output.increment(by: Int64(bytes))
            totals.withLock { $0.output += bytes }
        }
        flushBusy()
    }

    package func produced(_ bytes: Int) {
        output.increment(by: Int64(bytes))
        totals.withLock { $0.output += bytes }
        if step.isSource { input.increment(by: Int64(bytes)) }
        flushBusy()
    }

    /// The step starts or stops waiting: for input (`starving`) or for room downstream.
    package func waiting(_ isWaiting: Bool, starving: Bool) {
        let (busyTime, waitTime) = clock.withLock { state -> (Duration?, Duration?) in
            // Read under the lock: another thread's stretch may have been marked since.
            let now = ContinuousClock.now
            if isWaiting {
                let busy = state.waits == 0 ? state.mark.map { now - $0 } : nil
                state.waits += 1
                state.waitStart.append(now)
                state.mark = nil
                return (busy, nil)
            }
            guard state.waits > 0 else { return (nil, nil) }
            state.waits -= 1
            let waited = now - state.waitStart.removeLast()
            if state.waits == 0 { state.mark = now }
            return (nil, waited)
        }
        if let busyTime {
            busy.increment(by: busyTime.seconds)
            totals.withLock { $0.busy += busyTime.seconds }
        }
        if let waitTime {
            (starving ? starved : backpressure).increment(by: waitTime.seconds)
            totals.withLock { totals in
                if starving { totals.starved += waitTime.seconds } else { totals.backpressure += waitTime.seconds }
            }
        }
    }

    /// Counts the busy time up to now, so a scrape in a long busy stretch sees it grow.
    func flush() {
        flushBusy()
    }

    /// Several threads count into one meter (a restore in pieces' sessions): the time is read
    /// under the lock, or a thread that read it first but took the lock second would count a
    /// negative stretch, which a Prometheus counter refuses with a trap.
    private func flushBusy() {
        let elapsed = clock.withLock { state -> Duration? in
            let now = ContinuousClock.now
            guard state.waits == 0, let mark = state.mark else { return nil }
            state.mark = now
            return now - mark
        }
        if let elapsed {
            busy.increment(by: elapsed.seconds)
            totals.withLock { $0.busy += elapsed.seconds }
        }
    }
}

extension StepMeter {
    /// The step that held the others back between the totals `before` and `now`: PostgreSQL when
    /// writing into pg_restore (or reading from pg_dump) waited most, else the busiest step.
    /// `restoreClient` names what writes into PostgreSQL: pg_restore, or pgclone's COPY sessions
    /// in a restore in pieces.
    package static func bottleneck(
        _ now: [Step: Totals],
        _ before: [Step: Totals],
        restoreClient: String = "pg_restore"
    ) -> String? {
        func delta(_ step: Step, _ value: (Totals) -> Double) -> Double {
            (now[step].map(value) ?? 0) - (before[step].map(value) ?? 0)
        }
        let busiest = Step.allCases.max { delta($0, \.busy) < delta($1, \.busy) }
        guard let busiest,
            delta(busiest, \.busy) > 0 || delta(.restoreStdin, \.backpressure) > 0 || delta(.dumpStdout, \.starved) > 0
        else {
            return nil
        }
        if delta(.restoreStdin, \.backpressure) > delta(busiest, \.busy) { return "PostgreSQL (\(restoreClient))" }
        if delta(.dumpStdout, \.starved) > delta(busiest, \.busy) { return "PostgreSQL (pg_dump)" }
        return busiest.rawValue
    }
}

/// A bounded stream's fill and capacity.
package final class BufferMeter: Sendable {
    private let used: Gauge
    private let capacity: Gauge

    init(buffer: Buffer, registry: PrometheusCollectorRegistry) {
        used = registry.makeGauge(
            descriptor: .init(
                namespace: "pgclone",
                metricName: "buffer_used",
                unitName: "bytes",
                helpText: "Bytes buffered in the stream between two steps"
            ),
            labels: [("buffer", buffer.rawValue)]
        )
        capacity = registry.makeGauge(
            descriptor: .init(
                namespace: "pgclone",
                metricName: "buffer_capacity",
                unitName: "bytes",
                helpText: "Capacity of the stream between two steps"
            ),
            labels: [("buffer", buffer.rawValue)]
        )
    }

    package func setCapacity(_ bytes: Int) { capacity.set(to: Double(bytes)) }
    package func changed(by delta: Int) { used.increment(by: Double(delta)) }
}
