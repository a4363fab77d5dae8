import PGCloneMetrics
import Testing

/// Which step the status line and the run's summary name as the one holding the others back.
@Suite struct BottleneckTests {
    typealias Totals = StepMeter.Totals

    /// A restore that PostgreSQL holds back: every step before it waits for room, and writing
    /// into pg_restore's stdin waits longest.
    static let slowServer: [Step: Totals] = [
        .download: Totals(output: 8 << 20, busy: 0.4, starved: 0, backpressure: 9.5),
        .decompress: Totals(output: 16 << 20, busy: 1.2, starved: 0.3, backpressure: 8.9),
        .restoreStdin: Totals(output: 16 << 20, busy: 0.3, starved: 0.5, backpressure: 9.8),
    ]

    @Test func writingIntoPgRestoreWaitingLongestIsPostgreSQL() {
        #expect(StepMeter.bottleneck(Self.slowServer, [:]) == "PostgreSQL (pg_restore)")
    }

    /// Waiting for room elsewhere is the step after it being slow, not PostgreSQL, however long.
    @Test func otherwiseTheBusiestStepIsNamed() {
        let slowDecompression: [Step: Totals] = [
            .download: Totals(busy: 0.4, backpressure: 6.8),
            .decompress: Totals(busy: 6.5, starved: 0.1, backpressure: 0.2),
            .restoreStdin: Totals(busy: 0.3, starved: 6.1, backpressure: 0.4),
        ]
        #expect(StepMeter.bottleneck(slowDecompression, [:]) == "decompress")
        let slowDownload: [Step: Totals] = [
            .download: Totals(busy: 7),
            .decompress: Totals(busy: 1, starved: 6),
            .restoreStdin: Totals(busy: 0.5, starved: 6.4, backpressure: 0.9),
        ]
        #expect(StepMeter.bottleneck(slowDownload, [:]) == "download")
    }

    @Test func aDumpWaitingOnPgDumpIsPostgreSQL() {
        let slowServer: [Step: Totals] = [
            .dumpStdout: Totals(busy: 0.2, starved: 5),
            .compress: Totals(busy: 1.1, starved: 4),
            .upload: Totals(busy: 0.8, starved: 4.2),
        ]
        #expect(StepMeter.bottleneck(slowServer, [:]) == "PostgreSQL (pg_dump)")
        let slowUpload: [Step: Totals] = [
            .dumpStdout: Totals(busy: 0.2, starved: 1, backpressure: 6),
            .compress: Totals(busy: 1.1, backpressure: 5),
            .upload: Totals(busy: 7, starved: 0.1),
        ]
        #expect(StepMeter.bottleneck(slowUpload, [:]) == "upload")
    }

    /// The status line asks about its last interval: what changed since `before`, not the totals.
    @Test func anIntervalIsJudgedByWhatChangedInIt() {
        var now = Self.slowServer
        now[.decompress]!.busy += 0.2
        now[.restoreStdin]!.backpressure += 0.05
        #expect(StepMeter.bottleneck(now, Self.slowServer) == "decompress")
        #expect(StepMeter.bottleneck(now, [:]) == "PostgreSQL (pg_restore)")
    }

    @Test func nothingMovedNamesNothing() {
        #expect(StepMeter.bottleneck([:], [:]) == nil)
        #expect(StepMeter.bottleneck(Self.slowServer, Self.slowServer) == nil)
        // Only starved: waiting for input is not holding anyone back.
        #expect(StepMeter.bottleneck([.restoreStdin: Totals(starved: 3)], [:]) == nil)
    }

    /// A restore in pieces: its sessions count their own time (N of them, N seconds a second) and
    /// the writer into PostgreSQL is named as what it is.
    @Test func aRestoreInPiecesCountsEachSessionsTimeAndNamesItsCopySessions() {
        let metrics = PGCloneMetrics(build: .init(version: "1", libraries: []))
        #expect(metrics.restoreClient == "pg_restore")
        _ = metrics.worker(1)
        #expect(metrics.restoreClient == "COPY sessions")
        let load = metrics.step(.restoreStdin)
        load.setActive(true)
        #expect(load.snapshot.active)
        load.record(starved: .seconds(1))
        load.record(backpressure: .seconds(4))
        load.record(backpressure: .seconds(4))
        metrics.step(.decompress).record(busy: .milliseconds(500))
        let totals = Dictionary(uniqueKeysWithValues: Step.allCases.map { ($0, metrics.step($0).snapshot) })
        let loaded = totals[.restoreStdin]!
        #expect(loaded.busy == 0 && loaded.starved == 1 && loaded.backpressure == 8)
        #expect(totals[.decompress]!.busy == 0.5)
        #expect(StepMeter.bottleneck(totals, [:], restoreClient: metrics.restoreClient) == "PostgreSQL (COPY sessions)")
        let text = String(decoding: metrics.render(), as: UTF8.self)
        #expect(text.contains("pgclone_step_backpressure_seconds_total{step=\"restore_stdin\"} 8.0"), "\(text)")
        #expect(text.contains("pgclone_step_active{step=\"restore_stdin\"} 1.0"), "\(text)")
        load.setActive(false)
        #expect(!load.snapshot.active)
    }
}
