import CPGCloneSystem
import Glibc
import Synchronization

/// Makes pgclone's children — hooks and what they start, pg_dump, pg_restore and its `--jobs`
/// workers — die with pgclone, even when it is SIGKILLed or killed for memory, which no handler
/// of pgclone's own can see.
///
/// A small shell, started once, leads a process group that every child joins when it is spawned
/// (`setpgid` in `posix_spawn`, so a child is never outside it). The shell reads a pipe whose only
/// writer is pgclone; when pgclone's process ends, however it ends, the kernel closes that end,
/// the shell reads end-of-file and kills every process that carries pgclone's mark in its
/// environment (``markEnvironment()``: inherited by every descendant, also one that made a process
/// group of its own, as `timeout` does), then its whole group, itself last. The shell ignores
/// SIGINT, SIGTERM and SIGHUP; being in a process group of its own, it never gets a terminal's
/// signals.
///
/// (`PR_SET_PDEATHSIG` would need code between fork and exec, which swift-subprocess 1.0.2 does
/// not run; it fires when the spawning *thread* exits, and it is not inherited by grandchildren.)
package final class ChildWatchdog: Sendable {
    package static let shared = ChildWatchdog()

    private struct State {
        var pid: pid_t = 0
        var writeEnd: Int32 = -1
    }

    private let state = Mutex(State())

    /// The variable that marks pgclone's descendants.
    static let markVariable = "PGCLONE_PROCESS"

    /// SIGTERM to the group first (the shell ignores it), for what handles it; then SIGKILL to
    /// every marked process (one grep over every environment) and to the group, the shell last.
    static let script = """
        trap '' INT TERM HUP
        while read -r _; do :; done
        kill -TERM 0
        if [ -n "$\(markVariable)" ]; then
          for environ in $(grep -lzx "\(markVariable)=$\(markVariable)" /proc/[0-9]*/environ 2>/dev/null); do
            pid=${environ#/proc/}; pid=${pid%/environ}
            [ "$pid" = "$$" ] || kill -KILL "$pid" 2>/dev/null
          done
        fi
        kill -KILL 0
        """

    /// Puts a mark of this pgclone process in its environment, for every child to inherit. Call
    /// once at start, before any thread starts a child.
    package static func markEnvironment() {
        setenv(markVariable, "\(getpid())-\(UInt64.random(in: 0...UInt64.max))", 1)
    }

    /// The process group children must join: the watchdog's, started (again) if it is not running
    /// (a hook's teardown, which signals its whole group, may have ended it).
    package func processGroup() throws -> Int32 {
        try state.withLock { state in
            if state.pid > 0 {
                var status: Int32 = 0
                if waitpid(state.pid, &status, WNOHANG) == 0 { return state.pid }
                close(state.writeEnd)
            }
            (state.pid, state.writeEnd) = try Self.spawn()
            return state.pid
        }
    }

    /// Sends `signal` to every child (the watchdog ignores SIGINT, SIGTERM and SIGHUP): how an
    /// interrupt reaches what a hook started.
    package func signalGroup(_ signal: Int32) {
        state.withLock { state in
            if state.pid > 0 { kill(-state.pid, signal) }
        }
    }

    private static func spawn() throws -> (pid_t, Int32) {
        var ends: [Int32] = [-1, -1]
        guard CPGCloneSystem_pipe_cloexec(&ends) == 0 else { throw WatchdogError(operation: "pipe2", code: errno) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the watchdog's stdin; the write end stays pgclone's alone.
        posix_spawn_file_actions_adddup2(&actions, ends[0], 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        // pgclone ignores SIGPIPE; the shell and the kill it runs start from the defaults.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        )
        var pid: pid_t = 0
        let arguments: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup(script), nil]
        defer { for argument in arguments { free(argument) } }
        let result = posix_spawn(&pid, "/bin/sh", &actions, &attributes, arguments, environ)
        close(ends[0])
        guard result == 0 else {
            close(ends[1])
            throw WatchdogError(operation: "posix_spawn /bin/sh", code: result)
        }
        return (pid, ends[1])
    }
}

/// The watchdog could not be started.
struct WatchdogError: Error, CustomStringConvertible {
    var operation: String
    var code: Int32
    var description: String {
        """
        cannot start the process that stops pgclone's children with it (\(operation): \
        \(String(cString: strerror(code))))
        """
    }
}
