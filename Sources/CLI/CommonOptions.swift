import ArgumentParser
import Foundation
import Logging
import PGCloneMetrics
import PGCloneStreams

/// Options every command takes.
struct CommonOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Where dumps are: a directory (default .pgclone/) or s3://bucket/prefix.",
            valueName: "location"
        )
    )
    var storageLocation: String?

    @Option(help: ArgumentHelp("The config file (default pgclone.yaml, if present).", valueName: "path"))
    var configFile: String?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            """
            Memory budget for buffers and zstd, e.g. 64MiB (the default); restore --jobs N adds about 13MiB per \
            session.
            """,
            valueName: "size"
        )
    )
    var memoryLimit: String?

    @Flag(name: [.short, .long], help: "Print only warnings and errors on stderr, and no progress.")
    var quiet = false

    @Option(help: ArgumentHelp("trace, debug, info (the default), notice, warning or error.", valueName: "level"))
    var logLevel: String?

    @Option(
        help: ArgumentHelp(
            "text (the default) or json: one JSON object per line, for log shippers.",
            valueName: "format"
        )
    )
    var logFormat: String?

    @Option(
        help: ArgumentHelp(
            "Serve Prometheus metrics at http://ADDRESS/metrics while the command runs (PGCLONE_METRICS_ADDRESS).",
            valueName: "host:port"
        )
    )
    var metricsAddress: String?

    @Option(
        help: ArgumentHelp(
            "Keep serving metrics this long after the command ends (e.g. 15s), for a last scrape.",
            valueName: "duration"
        )
    )
    var metricsLinger: String?

    @Option(
        help: ArgumentHelp("Push the job summary to this Prometheus Pushgateway at start and end.", valueName: "url")
    )
    var pushgateway: String?

    @Option(
        help: ArgumentHelp("Write the job summary as node_exporter textfiles into this directory.", valueName: "dir")
    )
    var metricsTextfile: String?

    func makeLogger(status: StatusLine? = nil) throws(PGCloneCLIError) -> Logger {
        var level = quiet ? Logger.Level.warning : .info
        if let logLevel {
            guard let parsed = Logger.Level(rawValue: logLevel.lowercased()) else {
                throw PGCloneCLIError(
                    "--log-level must be one of trace, debug, info, notice, warning, error (it is \"\(logLevel)\")"
                )
            }
            level = parsed
        }
        let json: Bool
        switch logFormat?.lowercased() {
        case nil, "text": json = false
        case "json": json = true
        default: throw PGCloneCLIError("--log-format must be text or json (it is \"\(logFormat ?? "")\")")
        }
        var logger = Logger(label: "pgclone") { _ in StderrLogHandler(status: status, json: json) }
        logger.logLevel = level
        return logger
    }
}

/// A usage error found after parsing.
struct PGCloneCLIError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// Options of the commands that connect to PostgreSQL.
struct ConnectionOptions: ParsableArguments {
    @Option(
        // `-dNAME` as psql and pg_dump take it.
        name: [.customShort("d", allowingJoined: true), .long],
        help: ArgumentHelp(
            """
            The database: a postgresql:// URI, a key=value connection string or a database name (default \
            DATABASE_URL, else the PG* variables).
            """,
            valueName: "conn"
        )
    )
    var database: String?
}

/// The option of the commands that run administrative statements (restore, copy, `ls --local`).
struct MaintenanceOptions: ParsableArguments {
    @Option(
        name: .customLong("maintenance-db"),
        help: ArgumentHelp(
            """
            The database to connect to for the administrative statements, the only one tried (default postgres, \
            else template1; PGCLONE_MAINTENANCE_DB).
            """,
            valueName: "name"
        )
    )
    var maintenanceDatabase: String?
}

/// The process's peak resident memory (VmHWM from /proc/self/status), in bytes.
func peakResidentMemory() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
        let kibibytes = Int(line.split(separator: " ").dropFirst().first ?? "")
    else { return nil }
    return kibibytes * 1024
}

extension Logger {
    /// Logs at debug level, at the end of a dump or restore: what each pipeline step moved and how its
    /// time split, with its rate while busy (what it could do unhindered), the bottleneck over the
    /// whole run, what each COPY session of a restore in pieces did, and the peak resident memory
    /// (bench.sh and the memory tests read these lines).
    func logRunSummary(_ metrics: PGCloneMetrics) {
        guard logLevel <= .debug else { return }
        let totals = Dictionary(uniqueKeysWithValues: Step.allCases.map { ($0, metrics.step($0).snapshot) })
        for step in Step.allCases {
            guard let total = totals[step], total.output > 0 || total.busy > 0 else { continue }
            let rate = total.busy > 0 ? "\(ByteCount(bytes: Int(Double(total.output) / total.busy)))/s" : "-"
            let line = """
                step \(step.rawValue): \(ByteCount(bytes: total.output)) out; busy \(Self.seconds(total.busy)) s \
                (\(rate) while busy), 
                """
                + "starved \(Self.seconds(total.starved)) s, backpressure \(Self.seconds(total.backpressure)) s"
            debug("\(line)")
        }
        // A restore in pieces: how its COPY sessions shared the pieces.
        for (worker, total) in metrics.workerTotals {
            let work = "\(total.pieces) pieces, \(ByteCount(bytes: total.input)) in"
            let time = "busy \(Self.seconds(total.busy)) s, starved \(Self.seconds(total.starved)) s"
            debug("worker \(worker): \(work); \(time)")
        }
        if let bottleneck = StepMeter.bottleneck(totals, [:], restoreClient: metrics.restoreClient) {
            debug("bottleneck over the run: \(bottleneck)")
        }
        if let peak = peakResidentMemory() { debug("peak resident memory (VmHWM): \(peak) bytes") }
    }

    private static func seconds(_ value: Double) -> String { String(format: "%.2f", value) }
}
