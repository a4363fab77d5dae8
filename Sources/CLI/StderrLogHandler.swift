import Foundation
import Logging

/// Writes log lines to stderr as `pgclone: message` (`pgclone: warning: message` from warnings up),
/// like pg_dump and psql do; metadata only from the debug level down.
struct StderrLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = "pgclone: "
        switch event.level {
        case .warning: line += "warning: "
        case .error, .critical: line += "error: "
        case .trace, .debug: line += "\(event.level): "
        case .info, .notice: break
        }
        line += "\(event.message)"
        if logLevel <= .debug {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            if !merged.isEmpty {
                line += " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            }
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
