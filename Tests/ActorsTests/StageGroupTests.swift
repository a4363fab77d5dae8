import Dispatch
import PGCloneActors
import PGCloneStreams
import Synchronization
import Testing

/// A pipeline's three stages fail together: the one that says what went wrong is what the user
/// sees, not the `consumerTerminated` or `CancellationError` its neighbours got as a consequence.
///
/// The stages run on one serial executor, so the order they end in is the order the test gives
/// them: a stage waits for the previous one's ``Gate``, then yields once, which lets `runStages`
/// take in the previous failure (and cancel, or not) before this stage ends.
@Suite struct StageGroupTests {
    enum Position: String, CaseIterable, Sendable {
        case source, transform, sink
    }

    /// What a stage that saw the problem itself throws (pg_restore's exit, a corrupt dump).
    struct RootCause: Error, Equatable {
        var stage: String
    }

    @Test func successReturnsEveryStagesValue() async throws {
        let values = try await runStages(source: { 1 }, transform: { "two" }, sink: { [3.0] })
        #expect(values.0 == 1)
        #expect(values.1 == "two")
        #expect(values.2 == [3.0])
    }

    @Test func whatIsARootCause() {
        #expect(!isRootCause(CancellationError()))
        #expect(!isRootCause(ByteStreamError.consumerTerminated))
        #expect(isRootCause(ByteStreamError.writeAfterFinish))
        #expect(isRootCause(RootCause(stage: "sink")))
        #expect(isRootCause(PGCloneError(.corruptDump, "the dump is truncated")))
    }

    /// The neighbours fail first, one with `consumerTerminated`, one with `CancellationError`;
    /// that cancels nothing, and the root cause that comes after them is what is thrown.
    @Test(arguments: Position.allCases)
    func aRootCauseAfterItsConsequencesIsThrown(failing: Position) async throws {
        let recorder = Recorder()
        let others = Position.allCases.filter { $0 != failing }
        let gates = (Gate(), Gate(), Gate())
        // The neighbours end in turn, then the failing stage, which notes whether it was cancelled.
        var plan: [Position: @Sendable () async throws -> Int] = [:]
        plan[others[0]] = {
            gates.0.open()
            throw ByteStreamError.consumerTerminated
        }
        plan[others[1]] = {
            await gates.0.wait()
            await Task.yield()
            gates.1.open()
            throw CancellationError()
        }
        plan[failing] = {
            await gates.1.wait()
            await Task.yield()
            recorder.note("\(failing) cancelled: \(Task.isCancelled)")
            throw RootCause(stage: failing.rawValue)
        }
        let thrown = await Self.run(plan)
        #expect(thrown as? RootCause == RootCause(stage: failing.rawValue), "\(String(describing: thrown))")
        #expect(recorder.notes == ["\(failing) cancelled: false"])
    }

    /// The root cause comes first: the other two stages are cancelled (they end only then), and
    /// what they throw then does not replace it.
    @Test(.timeLimit(.minutes(1)), arguments: Position.allCases)
    func aRootCauseCancelsTheOthersAndIsThrown(failing: Position) async throws {
        let recorder = Recorder()
        let others = Position.allCases.filter { $0 != failing }
        var plan: [Position: @Sendable () async throws -> Int] = [:]
        plan[failing] = { throw RootCause(stage: failing.rawValue) }
        plan[others[0]] = {
            await waitUntilCancelled()
            recorder.note("\(others[0]) cancelled")
            throw ByteStreamError.consumerTerminated
        }
        plan[others[1]] = {
            await waitUntilCancelled()
            recorder.note("\(others[1]) cancelled")
            throw CancellationError()
        }
        let thrown = await Self.run(plan)
        #expect(thrown as? RootCause == RootCause(stage: failing.rawValue), "\(String(describing: thrown))")
        #expect(Set(recorder.notes) == Set(others.map { "\($0) cancelled" }))
    }

    /// Only consequences (the run was interrupted): the first of them is thrown, whichever it is.
    @Test(arguments: [true, false])
    func withoutARootCauseTheFirstErrorIsThrown(cancellationFirst: Bool) async throws {
        let gate = Gate()
        let first: any Error & Sendable = cancellationFirst ? CancellationError() : ByteStreamError.consumerTerminated
        let second: any Error & Sendable = cancellationFirst ? ByteStreamError.consumerTerminated : CancellationError()
        let thrown = await Self.run([
            .source: { 1 },
            .transform: {
                gate.open()
                throw first
            },
            .sink: {
                await gate.wait()
                await Task.yield()
                throw second
            },
        ])
        if cancellationFirst {
            #expect(thrown is CancellationError, "\(String(describing: thrown))")
        } else {
            #expect(thrown as? ByteStreamError == .consumerTerminated, "\(String(describing: thrown))")
        }
    }

    /// Runs the three stages of `plan` on one serial executor; returns what `runStages` threw.
    static func run(_ plan: [Position: @Sendable () async throws -> Int]) async -> (any Error)? {
        let executor = SerialTaskExecutor()
        return await withTaskExecutorPreference(executor) {
            do {
                _ = try await runStages(source: plan[.source]!, transform: plan[.transform]!, sink: plan[.sink]!)
                return nil
            } catch {
                return error
            }
        }
    }
}

/// Runs every job on one dispatch queue, one at a time, in the order they come.
final class SerialTaskExecutor: TaskExecutor {
    private let queue = DispatchQueue(label: "StageGroupTests")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}

/// Opened once; those waiting on it, and all that wait later, go on.
final class Gate: Sendable {
    private struct State {
        var open = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let isOpen = state.withLock { state in
                if !state.open { state.waiters.append(continuation) }
                return state.open
            }
            if isOpen { continuation.resume() }
        }
    }
}

/// Returns once the current task is cancelled.
func waitUntilCancelled() async {
    let gate = Gate()
    await withTaskCancellationHandler {
        await gate.wait()
    } onCancel: {
        gate.open()
    }
}

/// What the stages saw, in the order they saw it.
final class Recorder: Sendable {
    private let entries = Mutex<[String]>([])

    func note(_ entry: String) { entries.withLock { $0.append(entry) } }
    var notes: [String] { entries.withLock { $0 } }
}
