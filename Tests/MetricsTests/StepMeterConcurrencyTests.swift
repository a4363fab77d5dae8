import Dispatch
import PGCloneMetrics
import Testing

/// A restore in pieces' sessions count into the same step meters from several threads at once.
@Suite struct StepMeterConcurrencyTests {
    /// Each thread's stretch of busy time is counted whole and never negative: a thread that read
    /// the clock before another but took the meter's lock after it counted a negative stretch,
    /// which Prometheus' counter refuses with a trap (seen at 20,000 pieces with --jobs 2).
    @Test func metersCountedFromManyThreadsAtOnceStayConsistent() {
        let metrics = PGCloneMetrics(build: PGCloneMetricsTests.build)
        let step = metrics.step(.decompress)
        step.started()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<100_000 {
                step.produced(1)
                step.waiting(true, starving: true)
                step.waiting(false, starving: true)
            }
        }
        step.finished()
        let totals = step.snapshot
        #expect(totals.output == 800_000)
        #expect(totals.busy >= 0 && totals.starved >= 0)
    }
}
