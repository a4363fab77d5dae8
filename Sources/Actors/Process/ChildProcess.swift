import Glibc
import Subprocess
import SystemPackage

/// How pgclone starts pg_dump and pg_restore.
enum ChildProcess {
    static func executable(_ path: String) -> Executable {
        path.contains("/") ? .path(FilePath(path)) : .name(path)
    }

    /// Each child joins the watchdog's process group (``ChildWatchdog``): it dies with pgclone, and
    /// a terminal's Ctrl-C reaches pgclone alone, which then stops the child itself (SIGTERM,
    /// SIGKILL 3 s later) and cleans up.
    static func platformOptions() throws -> PlatformOptions {
        var options = PlatformOptions()
        options.processGroupID = try ChildWatchdog.shared.processGroup()
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(3))]
        return options
    }

    /// The environment children run with: pgclone's, in English (``messagesInEnglish``), plus what
    /// must not go through argv.
    static func environment(_ settings: ConnectionSettings) -> Environment {
        var updates = messagesInEnglish()
        for (name, value) in settings.childEnvironment {
            updates[Environment.Key(stringLiteral: name)] = value
        }
        return .inherit.updating(updates)
    }

    /// pgclone's environment, in English (``messagesInEnglish``).
    static var inheritedInEnglish: Environment { .inherit.updating(messagesInEnglish()) }

    /// pg_dump and pg_restore write their messages in English, which pgclone reads (their errors,
    /// `Command was:`, "creating ACL"): a user's `LANGUAGE=de` or `LC_ALL=de_DE.UTF-8` translated
    /// them. gettext ignores `LANGUAGE` where `LC_MESSAGES` is `C`; `LC_ALL`, which would win over
    /// it, becomes `LANG`, so that the other categories stay as they were.
    static func messagesInEnglish() -> [Environment.Key: String?] {
        // A nil value unsets the variable (`updates[key] = nil` would only drop the entry: .some(nil)).
        var updates: [Environment.Key: String?] = ["LANGUAGE": nil, "LC_MESSAGES": "C"]
        if let all = getenv("LC_ALL"), all.pointee != 0 {
            updates["LC_ALL"] = .some(nil)
            updates["LANG"] = String(cString: all)
        }
        return updates
    }

    /// "exited with status 1", "was killed by signal 9".
    static func describe(_ status: TerminationStatus) -> String {
        switch status {
        case .exited(let code): "exited with status \(code)"
        case .signaled(let signal): "was killed by signal \(signal)"
        }
    }

    /// Reads a child's stderr to the end into a bounded ``ChildStderr``, every error judged by
    /// `judge` as soon as it is complete (all are errors without one). While `judge` runs, the
    /// child may wait for its stderr pipe.
    static func collect(
        _ stderr: SubprocessOutputSequence,
        program: String,
        judge: (@Sendable (ChildStderr.Entry) async -> ChildStderr.Disposition)? = nil
    ) async throws -> ChildStderr {
        var log = ChildStderr(program: program)
        for try await buffer in stderr {
            buffer.withUnsafeBytes { log.append($0) }
            for entry in log.takeFinished() {
                log.record(entry, as: await judge?(entry) ?? .error)
            }
        }
        log.finish()
        for entry in log.takeFinished() {
            log.record(entry, as: await judge?(entry) ?? .error)
        }
        return log
    }
}
