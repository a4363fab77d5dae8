package import NIOCore

/// The value-type core of ``ByteStream``: what is buffered, who is waiting, and how each side ended.
///
/// It performs no synchronisation and never resumes anything itself; every transition returns an
/// action that the caller performs after releasing its lock. It is generic over the tokens that
/// stand for a suspended consumer and producer, so tests can drive it with plain integers.
///
/// One producer and one consumer. The producer is suspended once `high` or more bytes are buffered
/// (after its chunk was accepted) and resumed when the consumer has brought the level down to `low`
/// or below, so memory is bounded by `high` plus the producer's largest chunk.
package struct ByteStreamStateMachine<ConsumerToken, ProducerToken> {
    /// How the producer side ended.
    package enum SourceEnd {
        case finished
        case failed(any Error)
    }

    package let low: Int
    package let high: Int
    private var buffer = CircularBuffer<ByteBuffer>()
    package private(set) var bufferedBytes = 0
    private var consumer: ConsumerToken?
    private var producer: ProducerToken?
    private var sourceEnd: SourceEnd?
    /// Set once the consumer will take nothing more: it saw the end or an error, was cancelled or
    /// went away. Writes then fail with this error.
    private var consumerGone: (any Error)?

    package init(low: Int, high: Int) {
        precondition(low >= 0 && high > low, "ByteStream watermarks need 0 <= low < high")
        self.low = low
        self.high = high
    }

    package var isTerminated: Bool { consumerGone != nil }

    // MARK: Producer

    package enum WriteAction {
        /// The chunk was accepted; keep producing.
        case produceMore
        /// The chunk went straight to the waiting consumer; resume it with the chunk.
        case resumeConsumer(ConsumerToken, ByteBuffer)
        /// The chunk was accepted but the buffer is at its high watermark: suspend the producer
        /// (``suspendProducer(_:)``) before the next write.
        case suspendProducer
        /// The chunk was rejected.
        case fail(any Error)
    }

    package mutating func write(_ chunk: ByteBuffer) -> WriteAction {
        if let reason = consumerGone { return .fail(reason) }
        if sourceEnd != nil { return .fail(ByteStreamError.writeAfterFinish) }
        if chunk.readableBytes == 0 { return .produceMore }
        if let waiting = consumer {
            // The consumer only waits on an empty buffer.
            consumer = nil
            return .resumeConsumer(waiting, chunk)
        }
        buffer.append(chunk)
        bufferedBytes += chunk.readableBytes
        return bufferedBytes >= high ? .suspendProducer : .produceMore
    }

    package enum SuspendProducerAction {
        /// The token was stored; it will be returned by a later transition.
        case none
        /// Resume the producer at once, with this outcome.
        case resume(ProducerToken, Result<Void, any Error>)
    }

    package mutating func suspendProducer(_ token: ProducerToken, isCancelled: Bool) -> SuspendProducerAction {
        if let reason = consumerGone { return .resume(token, .failure(reason)) }
        if isCancelled {
            return .resume(token, .failure(CancellationError()))
        }
        if bufferedBytes <= low { return .resume(token, .success(())) }
        precondition(producer == nil, "ByteStream has a single producer")
        producer = token
        return .none
    }

    package enum ProducerCancelledAction {
        case none
        /// Resume the producer with `CancellationError`, and the consumer (if waiting) with the
        /// same error: the stream failed.
        case resume(producer: ProducerToken?, consumer: ConsumerToken?)
    }

    /// The producer's task was cancelled while it waited for room. The stream fails with
    /// `CancellationError` so that the consumer hears of it too.
    package mutating func producerCancelled() -> ProducerCancelledAction {
        guard let suspended = producer else { return .none }
        producer = nil
        if sourceEnd == nil { sourceEnd = .failed(CancellationError()) }
        let waiting = consumer
        consumer = nil
        if waiting != nil { consumerGone = CancellationError() }
        return .resume(producer: suspended, consumer: waiting)
    }

    package enum FinishAction {
        case none
        case resumeConsumer(ConsumerToken, Result<ByteBuffer?, any Error>)
    }

    /// The producer is done: `nil` for a clean end, or the error that ended it. Idempotent; only the
    /// first call counts.
    package mutating func finish(_ failure: (any Error)?) -> FinishAction {
        guard sourceEnd == nil, consumerGone == nil else { return .none }
        sourceEnd = failure.map { .failed($0) } ?? .finished
        guard let waiting = consumer else { return .none }
        consumer = nil
        // A waiting consumer means the buffer is empty: deliver the end now.
        consumerGone = failure ?? ByteStreamError.consumerTerminated
        return .resumeConsumer(waiting, failure.map { .failure($0) } ?? .success(nil))
    }

    // MARK: Consumer

    package enum NextAction {
        case deliver(ByteBuffer?)
        case deliverResumingProducer(ByteBuffer, ProducerToken)
        case fail(any Error)
        /// Nothing buffered yet: suspend the consumer with ``suspendConsumer(_:isCancelled:)``.
        case suspendConsumer
    }

    package mutating func next() -> NextAction {
        if consumerGone != nil { return .deliver(nil) }
        if case .failed(let error) = sourceEnd {
            // A failed stream fails at once: what is still buffered is of no use.
            dropBuffer(reason: error)
            return .fail(error)
        }
        if let chunk = buffer.popFirst() {
            bufferedBytes -= chunk.readableBytes
            if bufferedBytes <= low, let suspended = producer {
                producer = nil
                return .deliverResumingProducer(chunk, suspended)
            }
            return .deliver(chunk)
        }
        if sourceEnd != nil {
            consumerGone = ByteStreamError.consumerTerminated
            return .deliver(nil)
        }
        return .suspendConsumer
    }

    package enum SuspendConsumerAction {
        case none
        case resume(ConsumerToken, Result<ByteBuffer?, any Error>)
        case resumeBoth(ConsumerToken, Result<ByteBuffer?, any Error>, ProducerToken)
    }

    /// Registers a waiting consumer, unless something arrived (or the stream ended) since
    /// ``next()`` said to suspend.
    package mutating func suspendConsumer(_ token: ConsumerToken, isCancelled: Bool) -> SuspendConsumerAction {
        if isCancelled {
            let suspended = consumerCancelled()
            return suspended.map { .resumeBoth(token, .failure(CancellationError()), $0) }
                ?? .resume(token, .failure(CancellationError()))
        }
        switch next() {
        case .deliver(let chunk): return .resume(token, .success(chunk))
        case .deliverResumingProducer(let chunk, let suspended): return .resumeBoth(token, .success(chunk), suspended)
        case .fail(let error): return .resume(token, .failure(error))
        case .suspendConsumer:
            precondition(consumer == nil, "ByteStream allows a single iterator")
            consumer = token
            return .none
        }
    }

    /// The consumer's task was cancelled while waiting. Returns the consumer to resume with
    /// `CancellationError` and the producer to resume with ``ByteStreamError/consumerTerminated``.
    package mutating func cancelWaitingConsumer() -> (consumer: ConsumerToken?, producer: ProducerToken?) {
        let waiting = consumer
        consumer = nil
        guard waiting != nil else { return (nil, nil) }
        return (waiting, consumerCancelled())
    }

    /// The consumer goes away (cancelled, or its iterator was dropped): nothing more will be read.
    /// Returns a suspended producer, to be resumed with ``ByteStreamError/consumerTerminated``.
    package mutating func consumerCancelled() -> ProducerToken? {
        if consumerGone == nil { consumerGone = ByteStreamError.consumerTerminated }
        dropBuffer(reason: ByteStreamError.consumerTerminated)
        let suspended = producer
        producer = nil
        return suspended
    }

    /// Bytes thrown away with the buffer (on failure or when the consumer goes), not yet reported.
    package private(set) var droppedBytes = 0

    package mutating func takeDroppedBytes() -> Int {
        defer { droppedBytes = 0 }
        return droppedBytes
    }

    private mutating func dropBuffer(reason: any Error) {
        buffer.removeAll()
        droppedBytes += bufferedBytes
        bufferedBytes = 0
        if consumerGone == nil { consumerGone = reason }
    }
}

/// Errors a ``ByteStream`` raises on its own account.
package enum ByteStreamError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The consumer stopped reading (it failed, was cancelled, or finished early). The producer's
    /// write fails with this; it is never the root cause of a pipeline failure.
    case consumerTerminated
    /// The producer wrote after finishing the stream: a programming error.
    case writeAfterFinish

    package var description: String {
        switch self {
        case .consumerTerminated: "the next stage stopped reading"
        case .writeAfterFinish: "a stream was written after it was finished"
        }
    }
}
