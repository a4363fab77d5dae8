import Foundation
import Logging
import PGCloneActors

/// Writes log lines to stderr as `pgclone: message` (`pgclone: warning: message` from warnings up),
/// like pg_dump and psql do; metadata only from the debug level down.
struct StderrLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    /// The terminal's status line, when progress is shown: log lines go above it.
    var status: StatusLine?
    /// One JSON object per line (`--log-format json`) instead of `pgclone: …` text.
    var json = false

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        if json { return logJSON(event) }
        var line = "pgclone: "
        switch event.level {
        case .warning: line += "warning: "
        case .error, .critical: line += "error: "
        case .trace, .debug: line += "\(event.level): "
        case .info, .notice: break
        }
        // One line each, whatever a name, a key or a hook's output holds.
        line += "\(event.message)".escapingControlCharacters
        if logLevel <= .debug {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            if !merged.isEmpty {
                line += " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            }
        }
        if let status {
            status.log(line)
        } else {
            try? FileHandle.standardError.write(contentsOf: Data((line + "\n").utf8))
        }
    }
}

extension StderrLogHandler {
    private struct Record: Encodable {
        var time: String
        var level: String
        var message: String
        /// Always there, `{}` when empty: every line has the same keys, as the README says.
        var metadata: [String: String]
    }

    private func logJSON(_ event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let record = Record(
            time: Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(Date()),
            level: "\(event.level)",
            message: "\(event.message)",
            metadata: merged.mapValues { "\($0)" }
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(record) else { return }
        try? FileHandle.standardError.write(contentsOf: data + Data("\n".utf8))
    }
}
