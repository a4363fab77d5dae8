import NIOCore
import PGCloneStreams
import Testing

@Suite struct ByteStreamStateMachineTests {
    typealias Machine = ByteStreamStateMachine<Int, Int>

    private func bytes(_ size: Int) -> ByteBuffer {
        ByteBuffer(repeating: 7, count: size)
    }

    @Test func producerSuspendsAtHighAndResumesAtLow() {
        var machine = Machine(low: 4, high: 10)
        guard case .produceMore = machine.write(bytes(6)) else {
            Issue.record("6 of 10 bytes should not suspend")
            return
        }
        guard case .suspendProducer = machine.write(bytes(6)) else {
            Issue.record("12 of 10 bytes should suspend")
            return
        }
        #expect(machine.bufferedBytes == 12)
        guard case .none = machine.suspendProducer(1, isCancelled: false) else {
            Issue.record("should wait")
            return
        }
        // 6 left: still above low, the producer stays suspended.
        guard case .deliver(let first) = machine.next() else {
            Issue.record("expected a chunk")
            return
        }
        #expect(first?.readableBytes == 6)
        guard case .deliverResumingProducer(_, let producer) = machine.next() else {
            Issue.record("draining to low must resume the producer")
            return
        }
        #expect(producer == 1)
        #expect(machine.bufferedBytes == 0)
    }

    @Test func suspendingBelowLowResumesAtOnce() {
        var machine = Machine(low: 4, high: 10)
        _ = machine.write(bytes(12))
        _ = machine.next()
        guard case .resume(1, .success) = machine.suspendProducer(1, isCancelled: false) else {
            Issue.record("the buffer drained before the producer suspended: it must resume at once")
            return
        }
    }

    @Test func waitingConsumerGetsTheChunkDirectly() {
        var machine = Machine(low: 4, high: 10)
        guard case .suspendConsumer = machine.next() else {
            Issue.record("empty stream should suspend")
            return
        }
        guard case .none = machine.suspendConsumer(5, isCancelled: false) else {
            Issue.record("should wait")
            return
        }
        guard case .resumeConsumer(5, let delivered) = machine.write(bytes(3)) else {
            Issue.record("the waiting consumer must get the chunk")
            return
        }
        #expect(delivered.readableBytes == 3)
        #expect(machine.bufferedBytes == 0)
    }

    @Test func finishDeliversBufferedChunksThenEnd() {
        var machine = Machine(low: 4, high: 10)
        _ = machine.write(bytes(3))
        _ = machine.finish(nil)
        guard case .deliver(let chunk?) = machine.next(), chunk.readableBytes == 3 else {
            Issue.record("buffered chunk lost at finish")
            return
        }
        guard case .deliver(nil) = machine.next() else {
            Issue.record("expected the end")
            return
        }
        guard case .fail(let error) = machine.write(bytes(1)), (error as? ByteStreamError) == .consumerTerminated else {
            Issue.record("writes after the consumer saw the end must fail")
            return
        }
    }

    @Test func failureIsDeliveredAtOnceAndDropsTheBuffer() {
        struct Boom: Error {}
        var machine = Machine(low: 4, high: 10)
        _ = machine.write(bytes(3))
        _ = machine.finish(Boom())
        guard case .fail(let error) = machine.next() else {
            Issue.record("expected the failure")
            return
        }
        #expect(error is Boom)
        #expect(machine.bufferedBytes == 0)
        guard case .deliver(nil) = machine.next() else {
            Issue.record("after the failure: end")
            return
        }
    }

    @Test func finishResumesAWaitingConsumer() {
        var machine = Machine(low: 4, high: 10)
        _ = machine.next()
        _ = machine.suspendConsumer(9, isCancelled: false)
        guard case .resumeConsumer(9, .success(nil)) = machine.finish(nil) else {
            Issue.record("finish must end a waiting consumer's wait")
            return
        }
    }

    @Test func consumerGoingAwayFailsTheSuspendedProducerAndLaterWrites() {
        var machine = Machine(low: 4, high: 10)
        _ = machine.write(bytes(12))
        _ = machine.suspendProducer(1, isCancelled: false)
        #expect(machine.consumerCancelled() == 1)
        #expect(machine.bufferedBytes == 0)
        guard case .fail(let error) = machine.write(bytes(1)), (error as? ByteStreamError) == .consumerTerminated else {
            Issue.record("writes must fail once the consumer is gone")
            return
        }
    }

    @Test func cancelledConsumerResumesWithCancellationAndFailsProducer() {
        var machine = Machine(low: 4, high: 10)
        _ = machine.write(bytes(12))
        _ = machine.suspendProducer(1, isCancelled: false)
        _ = machine.next()
        _ = machine.next()
        // The producer was resumed by the drain; the consumer now waits and is cancelled.
        _ = machine.suspendConsumer(2, isCancelled: false)
        let (consumer, producer) = machine.cancelWaitingConsumer()
        #expect(consumer == 2)
        #expect(producer == nil)
        #expect(machine.isTerminated)
    }

    @Test func cancelledProducerFailsTheStream() {
        var machine = Machine(low: 4, high: 10)
        _ = machine.write(bytes(12))
        _ = machine.suspendProducer(1, isCancelled: false)
        guard case .resume(producer: 1, consumer: nil) = machine.producerCancelled() else {
            Issue.record("the suspended producer must be resumed")
            return
        }
        guard case .fail(let error) = machine.next() else {
            Issue.record("the consumer must see the failure")
            return
        }
        #expect(error is CancellationError)
    }
}
