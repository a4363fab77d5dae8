import Prometheus
import Synchronization

/// One COPY session's live metrics in a restore in pieces (`restore --jobs N` of an indexed dump),
/// label `worker` from 1 to N: the pieces and archive bytes it sent, and its wall time split into
/// busy (decompressing a piece and sending its rows with `COPY`) and starved (waiting for the next
/// piece to be read from storage). The pipeline steps (`pgclone_step_*`) add the sessions up; these
/// show whether they share the work and which of them waits.
package final class WorkerMeter: Sendable {
    package let worker: Int
    private let pieces: Counter
    private let input: Counter
    private let busy: Counter
    private let starved: Counter
    private let active: Gauge
    private let totals = Mutex(Totals())

    /// Running totals, for the run summary (Prometheus counters cannot be read back).
    package struct Totals: Sendable, Equatable {
        package var pieces = 0
        /// Archive bytes of the pieces loaded.
        package var input = 0
        /// Seconds.
        package var busy = 0.0
        /// Seconds.
        package var starved = 0.0

        package init(pieces: Int = 0, input: Int = 0, busy: Double = 0, starved: Double = 0) {
            self.pieces = pieces
            self.input = input
            self.busy = busy
            self.starved = starved
        }
    }

    package var snapshot: Totals { totals.withLock { $0 } }

    init(worker: Int, registry: PrometheusCollectorRegistry) {
        self.worker = worker
        let labels = [("worker", String(worker))]
        func counter(_ name: String, _ unit: String, _ help: String) -> Counter {
            registry.makeCounter(
                descriptor: .init(
                    namespace: "pgclone",
                    metricName: "restore_worker_\(name)",
                    unitName: unit,
                    helpText: help
                ),
                labels: labels
            )
        }
        pieces = counter("pieces", "total", "Pieces of table data the restore's COPY session sent")
        input = counter("input", "bytes_total", "Archive bytes of the pieces the restore's COPY session sent")
        busy = counter(
            "busy",
            "seconds_total",
            "Wall seconds the restore's COPY session decompressed and loaded pieces"
        )
        starved = counter("starved", "seconds_total", "Wall seconds the restore's COPY session waited for a piece")
        active = registry.makeGauge(
            descriptor: .init(
                namespace: "pgclone",
                metricName: "restore_worker",
                unitName: "active",
                helpText: "1 while the restore's COPY session runs"
            ),
            labels: labels
        )
    }

    package func started() { active.set(to: 1) }
    package func finished() { active.set(to: 0) }

    /// The session waited `waited` for a piece.
    package func waited(_ waited: Duration) {
        let seconds = max(0, waited.seconds)
        starved.increment(by: seconds)
        totals.withLock { $0.starved += seconds }
    }

    /// The session sent a piece's `bytes` archive bytes with `COPY`, in `took` from taking it to
    /// the COPY's end (a COPY the server refused, with `--ignore-restore-errors`, counts too).
    package func sent(bytes: Int, took: Duration) {
        let seconds = max(0, took.seconds)
        busy.increment(by: seconds)
        pieces.increment()
        input.increment(by: Int64(bytes))
        totals.withLock {
            $0.busy += seconds
            $0.pieces += 1
            $0.input += bytes
        }
    }
}
