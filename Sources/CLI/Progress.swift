import Foundation
import PGCloneActors
import PGCloneMetrics
import PGCloneStreams
import Synchronization

/// The status line at the bottom of a terminal: redrawn in place (`\r`, erase to end of line), and
/// cleared before a log line is written so the two never mix. Only used when stderr is a terminal.
/// Once ``close()``d — before the result goes to stdout, before the last error line, at exit — it
/// is never drawn again.
final class StatusLine: Sendable {
    private struct State {
        var text = ""
        var closed = false
    }

    private let state = Mutex(State())

    func show(_ text: String) {
        state.withLock { state in
            guard !state.closed else { return }
            state.text = text
            try? FileHandle.standardError.write(contentsOf: Data("\r\(text)\u{1B}[K".utf8))
        }
    }

    /// Writes a log line above the status line.
    func log(_ text: String) {
        state.withLock { state in
            let status = state.text.isEmpty ? "" : "\r\(state.text)\u{1B}[K"
            try? FileHandle.standardError.write(contentsOf: Data("\r\u{1B}[K\(text)\n\(status)".utf8))
        }
    }

    /// Erases the line for good.
    func close() {
        state.withLock { state in
            if !state.text.isEmpty { try? FileHandle.standardError.write(contentsOf: Data("\r\u{1B}[K".utf8)) }
            state.text = ""
            state.closed = true
        }
    }
}

/// Progress of a dump or restore on the status line: bytes done (and of how many), rate, percent,
/// ETA and the step that holds the pipeline back; the protocol phase while no bytes move.
struct ProgressReporter: Sendable {
    let metrics: PGCloneMetrics
    let status: StatusLine

    /// Redraws four times a second until cancelled, then clears the line.
    func run() async {
        var previous: [Step: StepMeter.Totals] = [:]
        var history: [(time: ContinuousClock.Instant, bytes: Int)] = []
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(250))
            guard let job = metrics.currentJob else { continue }
            let totals = Dictionary(uniqueKeysWithValues: Step.allCases.map { ($0, metrics.step($0).snapshot) })
            defer { previous = totals }
            let isRestore = job.command == Command.restore.rawValue
            let measured: Step = isRestore ? .download : .dumpStdout
            let done = totals[measured]?.output ?? 0
            let now = ContinuousClock.now
            history.append((now, done))
            history.removeAll { now - $0.time > .seconds(5) }
            let active = totals.filter(\.value.active)
            guard !active.isEmpty else {
                if let phase = job.currentPhase {
                    status.show("\(job.command) \(job.database): \(Self.describe(phase))")
                }
                continue
            }
            var parts = ["\(job.command) \(job.database):"]
            let total = isRestore ? metrics.sourceObjectSize : 0
            if total > 0 {
                parts.append("\(min(100, done * 100 / total))% \(ByteCount(bytes: done)) of \(ByteCount(bytes: total))")
            } else {
                parts.append("\(ByteCount(bytes: done)) archive")
            }
            if let first = history.first, now - first.time > .milliseconds(500) {
                let rate = Double(done - first.bytes) / (now - first.time).seconds
                parts.append("\(ByteCount(bytes: Int(rate)))/s")
                if total > 0, rate > 0, done < total {
                    parts.append("ETA \(Self.duration(Double(total - done) / rate))")
                }
            }
            if let bottleneck = StepMeter.bottleneck(totals, previous, restoreClient: metrics.restoreClient) {
                parts.append("bottleneck: \(bottleneck)")
            }
            status.show(parts.joined(separator: " "))
        }
        status.close()
    }

    static func describe(_ phase: Phase) -> String {
        switch phase {
        case .lockWait: "waiting for another restore to finish"
        case .preDumpHooks: "running pre-dump hooks"
        case .dump: "dumping"
        case .prepare: "preparing the temporary database"
        case .createTemporary: "creating the temporary database"
        case .restore: "restoring"
        case .restoreSchema: "restoring the schema"
        case .restoreData: "restoring the tables' data"
        case .restoreIndexes: "building indexes"
        case .restoreConstraints: "adding foreign keys and privileges"
        case .settings: "applying database settings"
        case .snapshot: "snapshotting for --reversible"
        case .preSwapHooks: "running pre-swap hooks"
        case .swap: "swapping the restored database in"
        case .cleanup: "dropping the old database"
        }
    }

    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded(.up))
        if whole < 60 { return "\(whole)s" }
        if whole < 3600 { return "\(whole / 60)m\(String(format: "%02d", whole % 60))s" }
        return "\(whole / 3600)h\(String(format: "%02d", whole / 60 % 60))m"
    }
}
