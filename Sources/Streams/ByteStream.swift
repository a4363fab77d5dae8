import Dispatch
package import NIOCore
import Synchronization

/// A unicast asynchronous sequence of byte chunks whose buffer is bounded in bytes.
///
/// Create one with ``makeStream(backpressureStrategy:)``, give the ``Source`` to the producing stage and
/// iterate the stream in the consuming stage. The producer is suspended once the buffered bytes reach
/// the high watermark and resumed when they fall to the low watermark; the consumer is suspended while
/// the stream is empty. Memory is bounded by `high` plus the largest chunk, so producers cap their
/// chunk size.
///
/// Both ends propagate: ``Source/finish()`` ends the sequence after the buffered chunks,
/// ``Source/finish(throwing:)`` fails it at once; a consumer that is cancelled, throws out of its loop
/// or drops its iterator makes the producer's next (or current) write throw
/// ``ByteStreamError/consumerTerminated``; a producer cancelled while it waits for room fails the
/// stream with `CancellationError`.
///
/// - Important: Only one iterator may be created.
package struct ByteStream: AsyncSequence, Sendable {
    package typealias Element = ByteBuffer
    package typealias Failure = any Error

    private let storage: Storage

    /// Watermarks, in bytes.
    package struct BackpressureStrategy: Sendable {
        package var low: ByteCount
        package var high: ByteCount

        /// Suspend the producer at `high` buffered bytes, resume it at `low`.
        package static func watermark(low: ByteCount, high: ByteCount) -> Self {
            Self(low: low, high: high)
        }

        /// A stream holding at most about `capacity` bytes (plus one chunk); the producer resumes
        /// when half of it has been consumed.
        package static func capacity(_ capacity: ByteCount) -> Self {
            Self(low: .bytes(capacity.bytes / 2), high: capacity)
        }
    }

    package static func makeStream(
        backpressureStrategy: BackpressureStrategy,
        observer: Observer? = nil
    ) -> (stream: ByteStream, source: Source) {
        let storage = Storage(
            low: backpressureStrategy.low.bytes,
            high: backpressureStrategy.high.bytes,
            observer: observer
        )
        return (ByteStream(storage: storage), Source(storage: storage))
    }

    /// What a stream reports as it is used, for metrics: bytes through it, the change in what it
    /// buffers, and how long each side waited for the other (the consumer starved, the producer
    /// held back). Called outside the stream's lock, on the caller's thread.
    package struct Observer: Sendable {
        package var written: @Sendable (_ bytes: Int) -> Void = { _ in }
        package var read: @Sendable (_ bytes: Int) -> Void = { _ in }
        package var bufferedChanged: @Sendable (_ delta: Int) -> Void = { _ in }
        package var producerWaiting: @Sendable (_ waiting: Bool) -> Void = { _ in }
        package var consumerWaiting: @Sendable (_ waiting: Bool) -> Void = { _ in }

        package init() {}
    }

    /// Bytes buffered right now.
    package var bufferedBytes: Int { storage.bufferedBytes }

    package func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(storage: storage)
    }

    /// Stops consuming: the producer's writes fail from now on with
    /// ``ByteStreamError/consumerTerminated``. Used by a stage that has to give up on its input.
    package func cancel() {
        storage.consumerCancelled()
    }

    package struct AsyncIterator: AsyncIteratorProtocol {
        /// Tells the storage when the iterator goes away, so a producer never waits for a reader
        /// that no longer exists.
        private final class Lifetime {
            let storage: Storage
            init(storage: Storage) { self.storage = storage }
            deinit { storage.consumerCancelled() }
        }

        private let lifetime: Lifetime

        fileprivate init(storage: Storage) {
            lifetime = Lifetime(storage: storage)
        }

        package mutating func next() async throws -> ByteBuffer? {
            try await lifetime.storage.next()
        }
    }

    /// The producing end of a ``ByteStream``.
    package struct Source: Sendable {
        fileprivate let storage: Storage

        /// Appends a chunk; suspends while the buffer is at its high watermark. Throws
        /// ``ByteStreamError/consumerTerminated`` once the consumer is gone and `CancellationError`
        /// if the task is cancelled while it waits (which also fails the stream).
        package func write(_ chunk: ByteBuffer) async throws {
            try await storage.write(chunk)
        }

        /// Like ``write(_:)``, but blocks the calling thread while the buffer is full. Only for threads
        /// outside Swift's cooperative pool: libcurl's transfer threads.
        @available(*, noasync, message: "blocks its thread; use write(_:) in async code")
        package func writeBlocking(_ chunk: ByteBuffer) throws {
            try storage.writeBlocking(chunk)
        }

        /// Ends the stream: the consumer reads what is buffered, then `nil`. Idempotent.
        package func finish() {
            storage.finish(nil)
        }

        /// Fails the stream: the consumer's next read throws `error`. Idempotent; after
        /// ``finish()`` it has no effect.
        package func finish(throwing error: any Error) {
            storage.finish(error)
        }
    }
}

@available(*, unavailable)
extension ByteStream.AsyncIterator: Sendable {}

extension ByteStream {
    /// Shared state of one stream: the state machine behind a mutex. Continuations are resumed only
    /// after the lock is released.
    fileprivate final class Storage: Sendable {
        typealias Machine = ByteStreamStateMachine<CheckedContinuation<ByteBuffer?, any Error>, ProducerWaiter>

        let high: Int
        private let machine: Mutex<Machine>
        private let observer: Observer?

        init(low: Int, high: Int, observer: Observer?) {
            self.high = high
            self.machine = Mutex(Machine(low: low, high: high))
            self.observer = observer
        }

        var bufferedBytes: Int { machine.withLock { $0.bufferedBytes } }

        // MARK: Producer side

        /// Hands `chunk` to the stream (or straight to a waiting consumer); `true` when the buffer
        /// is now at its high watermark and the producer must wait for room.
        private func offer(_ chunk: ByteBuffer) throws -> Bool {
            let action = machine.withLock { $0.write(chunk) }
            report(action, chunk.readableBytes)
            switch action {
            case .produceMore:
                return false
            case .resumeConsumer(let consumer, let chunk):
                consumer.resume(returning: chunk)
                return false
            case .fail(let error):
                throw error
            case .suspendProducer:
                return true
            }
        }

        func write(_ chunk: ByteBuffer) async throws {
            guard try offer(chunk) else { return }
            observer?.producerWaiting(true)
            defer { observer?.producerWaiting(false) }
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let action = machine.withLock {
                        $0.suspendProducer(.task(continuation), isCancelled: Task.isCancelled)
                    }
                    switch action {
                    case .none:
                        break
                    case .resume(let producer, let result):
                        if case .failure(let error) = result, error is CancellationError {
                            self.producerCancelledBeforeSuspending()
                        }
                        producer.resume(with: result)
                    }
                }
            } onCancel: {
                let action = machine.withLock { $0.producerCancelled() }
                if case .resume(let producer, let consumer) = action {
                    producer?.resume(throwing: CancellationError())
                    consumer?.resume(throwing: CancellationError())
                }
            }
        }

        /// A producer found its task cancelled as it was about to wait: fail the stream as if it had
        /// been cancelled while waiting.
        private func producerCancelledBeforeSuspending() {
            if case .resumeConsumer(let consumer, let result) = machine.withLock({ $0.finish(CancellationError()) }) {
                consumer.resume(with: result)
            }
        }

        /// A write for producers on threads of their own (libcurl's callback): blocks the calling
        /// thread, never a task, while the buffer is full.
        func writeBlocking(_ chunk: ByteBuffer) throws {
            guard try offer(chunk) else { return }
            observer?.producerWaiting(true)
            defer { observer?.producerWaiting(false) }
            let waiter = ThreadWaiter()
            if case .resume(let producer, let result) = machine.withLock({
                $0.suspendProducer(.thread(waiter), isCancelled: false)
            }) {
                producer.resume(with: result)
            }
            try waiter.wait()
        }

        /// Reports an accepted chunk: written, and buffered unless it went straight to the consumer.
        private func report(_ action: Machine.WriteAction, _ bytes: Int) {
            guard let observer else { return }
            switch action {
            case .produceMore, .suspendProducer:
                observer.written(bytes)
                observer.bufferedChanged(bytes)
            case .resumeConsumer:
                observer.written(bytes)
                observer.read(bytes)
            case .fail:
                break
            }
        }

        func finish(_ failure: (any Error)?) {
            if case .resumeConsumer(let consumer, let result) = machine.withLock({ $0.finish(failure) }) {
                consumer.resume(with: result)
            }
        }

        // MARK: Consumer side

        func next() async throws -> ByteBuffer? {
            if Task.isCancelled {
                consumerCancelled()
                throw CancellationError()
            }
            let (action, dropped) = machine.withLock { ($0.next(), $0.takeDroppedBytes()) }
            if dropped > 0 { observer?.bufferedChanged(-dropped) }
            switch action {
            case .deliver(let chunk):
                if let chunk { reportRead(chunk.readableBytes) }
                return chunk
            case .deliverResumingProducer(let chunk, let producer):
                reportRead(chunk.readableBytes)
                producer.resume()
                return chunk
            case .fail(let error):
                throw error
            case .suspendConsumer:
                observer?.consumerWaiting(true)
                defer { observer?.consumerWaiting(false) }
                return try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation {
                        (continuation: CheckedContinuation<ByteBuffer?, any Error>) in
                        let (action, dropped) = machine.withLock {
                            ($0.suspendConsumer(continuation, isCancelled: Task.isCancelled), $0.takeDroppedBytes())
                        }
                        if dropped > 0 { self.observer?.bufferedChanged(-dropped) }
                        switch action {
                        case .none:
                            break
                        case .resume(let consumer, let result):
                            if case .success(let chunk?) = result { self.reportRead(chunk.readableBytes) }
                            consumer.resume(with: result)
                        case .resumeBoth(let consumer, let result, let producer):
                            if case .success(let chunk?) = result { self.reportRead(chunk.readableBytes) }
                            if case .failure = result {
                                producer.resume(throwing: ByteStreamError.consumerTerminated)
                            } else {
                                producer.resume()
                            }
                            consumer.resume(with: result)
                        }
                    }
                } onCancel: {
                    let (consumer, producer, dropped) = machine.withLock { state in
                        let (consumer, producer) = state.cancelWaitingConsumer()
                        return (consumer, producer, state.takeDroppedBytes())
                    }
                    if dropped > 0 { observer?.bufferedChanged(-dropped) }
                    producer?.resume(throwing: ByteStreamError.consumerTerminated)
                    consumer?.resume(throwing: CancellationError())
                }
            }
        }

        /// Reports a chunk taken from the buffer.
        private func reportRead(_ bytes: Int) {
            observer?.read(bytes)
            observer?.bufferedChanged(-bytes)
        }

        func consumerCancelled() {
            let (producer, dropped) = machine.withLock { ($0.consumerCancelled(), $0.takeDroppedBytes()) }
            if dropped > 0 { observer?.bufferedChanged(-dropped) }
            producer?.resume(throwing: ByteStreamError.consumerTerminated)
        }
    }
}

/// A producer waiting for room: a suspended task, or a thread blocked in ``ByteStream/Source/writeBlocking(_:)``.
enum ProducerWaiter: Sendable {
    case task(CheckedContinuation<Void, any Error>)
    case thread(ThreadWaiter)

    func resume(with result: Result<Void, any Error>) {
        switch self {
        case .task(let continuation): continuation.resume(with: result)
        case .thread(let waiter): waiter.resume(with: result)
        }
    }

    func resume() { resume(with: .success(())) }
    func resume(throwing error: any Error) { resume(with: .failure(error)) }
}

/// Blocks one thread until resumed.
final class ThreadWaiter: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let result = Mutex<Result<Void, any Error>?>(nil)

    func resume(with outcome: Result<Void, any Error>) {
        result.withLock { $0 = outcome }
        semaphore.signal()
    }

    @available(*, noasync, message: "blocks its thread")
    func wait() throws {
        semaphore.wait()
        try result.withLock { $0 }!.get()
    }
}
