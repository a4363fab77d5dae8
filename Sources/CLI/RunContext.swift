import Foundation
import Logging
import PGCloneActors
import PGCloneMetrics
import PGCloneStreams
import Synchronization

/// What a command runs with: the logger, the metrics and their delivery, and whether it is past its
/// point of no return.
final class RunContext: Sendable {
    let logger: Logger
    let metrics: PGCloneMetrics
    let delivery: MetricsDelivery
    /// The terminal's status line, if one is shown.
    let status: StatusLine?
    private let committed = Mutex(false)
    private let partial = Mutex<(any Encodable & Sendable)?>(nil)

    /// Writes the command's result on stdout, once the status line is gone from the terminal (the
    /// two may be the same terminal).
    func printResult(_ text: String) {
        status?.close()
        try? FileHandle.standardOutput.write(contentsOf: Data((text + "\n").utf8))
    }

    /// Called when the command's change has committed (the swap): from then on it has succeeded,
    /// and a signal no longer stops it.
    @Sendable func markCommitted() {
        committed.withLock { $0 = true }
    }

    var isCommitted: Bool { committed.withLock { $0 } }

    /// What a command that fails part-way has done so far (prune: the dumps it deleted), for the
    /// `--json` failure document's `result`; set before the failure is thrown.
    var partialResult: (any Encodable & Sendable)? {
        get { partial.withLock { $0 } }
        set { partial.withLock { $0 = newValue } }
    }

    init(logger: Logger, metrics: PGCloneMetrics, delivery: MetricsDelivery, status: StatusLine?) {
        self.logger = logger
        self.metrics = metrics
        self.delivery = delivery
        self.status = status
    }

    /// Starts the job summary (labels known once the database is) and pushes its start.
    func startJob(_ command: Command, database: String, config: String, settings: Settings) async {
        let storage = settings.storageLocation.value.hasPrefix("s3://") ? "s3" : "local"
        let job = metrics.startJob(command: command, database: database, config: config, storage: storage)
        await delivery.started(job)
    }
}

/// Where the job summary goes besides `/metrics`: a Pushgateway (POST at start and end, so a
/// failed run never replaces the last success) and node_exporter textfiles. A delivery that fails
/// is logged and never fails the command.
struct MetricsDelivery: Sendable {
    var pushgateway: String?
    var textfileDirectory: String?
    var metrics: PGCloneMetrics
    var logger: Logger

    /// At the start: pushed, and the job's textfile written (`outcome="running"`), so that a run
    /// killed outright (SIGKILL, out of memory) stays visible as running in both.
    func started(_ job: JobSummary) async {
        // The file first: a push may wait seconds for a gateway, and a kill may come meanwhile.
        if let textfileDirectory { writeTextfiles(job, success: false, directory: textfileDirectory) }
        await push(job, withSuccess: false)
    }

    func finished(_ job: JobSummary, success: Bool) async {
        await push(job, withSuccess: success)
        if let textfileDirectory { writeTextfiles(job, success: success, directory: textfileDirectory) }
    }

    private func push(_ job: JobSummary, withSuccess: Bool) async {
        guard let pushgateway else { return }
        do {
            try await Pushgateway.push(
                metrics.renderSummary(withSuccess: withSuccess),
                to: pushgateway,
                grouping: [("command", job.command), ("database", job.database), ("config", job.config)]
            )
        } catch {
            let reason = error is CancellationError ? "interrupted" : "\(error)"
            let message = "could not push the job summary to \(pushgateway): \(reason)"
            logger.warning("\(URLPassword.redacting(message, secretsOf: pushgateway))")
        }
    }

    /// `pgclone_<command>_<database>.<config>.prom`, and on success `…_success.prom`, each written
    /// to a temporary name and renamed, so node_exporter never reads half a file. The names are
    /// encoded as in dump keys, so two databases never share a file.
    private func writeTextfiles(_ job: JobSummary, success: Bool, directory: String) {
        let slug = "\(KeySegment.encode(job.database)).\(KeySegment.encode(job.config))"
        var files = [("pgclone_\(job.command)_\(slug).prom", metrics.renderSummary(withSuccess: false))]
        if success { files.append(("pgclone_\(job.command)_\(slug)_success.prom", metrics.renderSuccess())) }
        for (name, contents) in files {
            let path = "\(directory)/\(name)"
            let temporary = "\(path).\(getpid()).tmp"
            do {
                try Data(contents).write(to: URL(fileURLWithPath: temporary))
                guard rename(temporary, path) == 0 else {
                    throw CocoaError(.fileWriteUnknown)
                }
            } catch {
                unlink(temporary)
                logger.warning("could not write the metrics textfile \(path): \(String(cString: strerror(errno)))")
            }
        }
    }
}
