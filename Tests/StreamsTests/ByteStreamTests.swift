import Glibc
import NIOCore
import PGCloneStreams
import Synchronization
import Testing

@Suite struct ByteStreamTests {
    private func stream(high: Int, low: Int) -> (ByteStream, ByteStream.Source) {
        ByteStream.makeStream(backpressureStrategy: .watermark(low: .bytes(low), high: .bytes(high)))
    }

    @Test(.timeLimit(.minutes(1)))
    func deliversEveryByteInOrderUnderBackpressure() async throws {
        let (stream, source) = stream(high: 64 << 10, low: 16 << 10)
        let total = 2 << 20
        let peak = Mutex(0)
        // Byte i is i % 256: every chunk is a slice of this pattern, compared with memcmp, so the
        // test's own work is small next to the stream's (a byte-by-byte loop in a debug build took
        // seconds, and a minute in a loaded full run).
        let pattern = (0..<(256 + 20_011)).map { UInt8(truncatingIfNeeded: $0) }
        async let produced: Int = {
            var sent = 0
            var size = 1
            while sent < total {
                let count = min(size, total - sent)
                try await source.write(ByteBuffer(bytes: pattern[(sent % 256)..<(sent % 256 + count)]))
                peak.withLock { $0 = max($0, stream.bufferedBytes) }
                sent += count
                size = size * 7 % 20_011 + 1
            }
            source.finish()
            return sent
        }()
        var received = 0
        var mismatch = false
        var chunks = 0
        for try await chunk in stream {
            let start = received % 256
            let same = chunk.withUnsafeReadableBytes { bytes in
                pattern.withUnsafeBytes { expected in
                    start + bytes.count <= expected.count
                        && memcmp(bytes.baseAddress!, expected.baseAddress! + start, bytes.count) == 0
                }
            }
            if !same { mismatch = true }
            received += chunk.readableBytes
            chunks += 1
            if chunks % 5 == 0 { try await Task.sleep(for: .milliseconds(1)) }
        }
        #expect(try await produced == total)
        #expect(received == total)
        #expect(!mismatch)
        // Bounded by high plus one chunk (chunks here are at most 20 KiB).
        #expect(peak.withLock { $0 } <= (64 << 10) + 20_011)
    }

    @Test(.timeLimit(.minutes(1)))
    func producerWaitsWhileFull() async throws {
        let (stream, source) = stream(high: 1000, low: 500)
        let writes = Mutex(0)
        let producer = Task {
            for _ in 0..<10 {
                try await source.write(ByteBuffer(repeating: 1, count: 400))
                writes.withLock { $0 += 1 }
            }
            source.finish()
        }
        // The third chunk reaches the high watermark: it is accepted, but its write waits for room.
        while stream.bufferedBytes < 1200 { try await Task.sleep(for: .milliseconds(1)) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(writes.withLock { $0 } == 2)
        #expect(stream.bufferedBytes == 1200)
        var total = 0
        for try await chunk in stream { total += chunk.readableBytes }
        try await producer.value
        #expect(total == 4000)
    }

    @Test(.timeLimit(.minutes(1)))
    func consumerCancellationFailsTheProducer() async throws {
        let (stream, source) = stream(high: 100, low: 50)
        let consumer = Task {
            for try await _ in stream {}
        }
        try await source.write(ByteBuffer(repeating: 1, count: 10))
        consumer.cancel()
        await #expect(throws: CancellationError.self) { try await consumer.value }
        await #expect(throws: ByteStreamError.consumerTerminated) {
            for _ in 0..<100 { try await source.write(ByteBuffer(repeating: 1, count: 50)) }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func suspendedProducerIsReleasedWhenTheConsumerStops() async throws {
        let (stream, source) = stream(high: 100, low: 50)
        let producer = Task {
            try await source.write(ByteBuffer(repeating: 1, count: 200))
            try await source.write(ByteBuffer(repeating: 1, count: 200))
        }
        while stream.bufferedBytes < 200 { try await Task.sleep(for: .milliseconds(1)) }
        stream.cancel()
        await #expect(throws: ByteStreamError.consumerTerminated) { try await producer.value }
    }

    @Test(.timeLimit(.minutes(1)))
    func droppedIteratorReleasesTheProducer() async throws {
        let (stream, source) = stream(high: 100, low: 50)
        let producer = Task {
            for _ in 0..<10 { try await source.write(ByteBuffer(repeating: 1, count: 60)) }
        }
        do {
            var iterator = stream.makeAsyncIterator()
            _ = try await iterator.next()
        }
        await #expect(throws: ByteStreamError.consumerTerminated) { try await producer.value }
    }

    @Test(.timeLimit(.minutes(1)))
    func producerCancellationReachesTheConsumer() async throws {
        let (stream, source) = stream(high: 100, low: 50)
        let producer = Task {
            try await source.write(ByteBuffer(repeating: 1, count: 150))
            try await source.write(ByteBuffer(repeating: 1, count: 150))
        }
        while stream.bufferedBytes < 150 { try await Task.sleep(for: .milliseconds(1)) }
        producer.cancel()
        await #expect(throws: CancellationError.self) { try await producer.value }
        await #expect(throws: CancellationError.self) {
            for try await _ in stream {}
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func failureReachesAWaitingConsumer() async throws {
        struct Boom: Error {}
        let (stream, source) = stream(high: 100, low: 50)
        let consumer = Task {
            for try await _ in stream {}
        }
        try await Task.sleep(for: .milliseconds(20))
        source.finish(throwing: Boom())
        await #expect(throws: Boom.self) { try await consumer.value }
    }

    @Test func finishIsIdempotentAndFirstWins() async throws {
        struct Boom: Error {}
        let (stream, source) = stream(high: 100, low: 50)
        try await source.write(ByteBuffer(repeating: 1, count: 10))
        source.finish()
        source.finish(throwing: Boom())
        var total = 0
        for try await chunk in stream { total += chunk.readableBytes }
        #expect(total == 10)
    }
}
