import Dispatch

/// A serial executor backed by its own dispatch queue, for actors that make blocking calls (libpq,
/// file I/O, libzstd with workers): their jobs run on a libdispatch thread, never on Swift's
/// cooperative pool, whose two threads here must stay free for the stages that only await.
///
/// A serial queue targets libdispatch's overcommitting root queue, which adds a thread rather than
/// making other queues wait while one is blocked.
package final class DispatchQueueExecutor: SerialExecutor {
    private let queue: DispatchQueue

    package init(label: String) {
        queue = DispatchQueue(label: label)
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }

    package func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Traps unless called on this executor's queue: what `assumeIsolated` and the runtime's
    /// isolation checks of the actors it runs ask.
    package func checkIsolated() {
        dispatchPrecondition(condition: .onQueue(queue))
    }
}
