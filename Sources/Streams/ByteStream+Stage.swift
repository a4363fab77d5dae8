package import NIOCore

extension ByteStream.Source {
    /// Runs a producing stage's body and then ends the stream: cleanly if the body returned, with
    /// its error if it threw, so the consumer learns how the producer ended in every case.
    package func finishing<Result>(_ body: () async throws -> Result) async throws -> Result {
        do {
            let result = try await body()
            finish()
            return result
        } catch {
            finish(throwing: error)
            throw error
        }
    }
}

/// Reads a ``ByteStream`` through a small look-ahead, for stages that must inspect a header before
/// streaming the rest.
package struct ByteStreamReader {
    private var iterator: ByteStream.AsyncIterator
    private var pending: CircularBuffer<ByteBuffer> = []
    package private(set) var bytesRead = 0
    package private(set) var atEnd = false

    package init(_ stream: ByteStream) {
        iterator = stream.makeAsyncIterator()
    }

    /// The next chunk: what was peeked first, then the stream's own chunks. `nil` at the end.
    package mutating func next() async throws -> ByteBuffer? {
        if let chunk = pending.popFirst() { return chunk }
        guard !atEnd, let chunk = try await iterator.next() else {
            atEnd = true
            return nil
        }
        bytesRead += chunk.readableBytes
        return chunk
    }

    /// Up to `count` bytes from the current position without consuming them; fewer only at the end.
    package mutating func peek(_ count: Int) async throws -> [UInt8] {
        while pending.reduce(0, { $0 + $1.readableBytes }) < count, !atEnd {
            guard let chunk = try await iterator.next() else {
                atEnd = true
                break
            }
            bytesRead += chunk.readableBytes
            pending.append(chunk)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        for chunk in pending where bytes.count < count {
            bytes += chunk.readableBytesView.prefix(count - bytes.count)
        }
        return bytes
    }

    /// Consumes `count` bytes (which must have been peeked) and returns them.
    package mutating func read(_ count: Int) async throws -> [UInt8] {
        let bytes = try await peek(count)
        var toDrop = bytes.count
        while toDrop > 0, var chunk = pending.popFirst() {
            let dropped = min(toDrop, chunk.readableBytes)
            chunk.moveReaderIndex(forwardBy: dropped)
            toDrop -= dropped
            if chunk.readableBytes > 0 { pending.prepend(chunk) }
        }
        return bytes
    }
}
