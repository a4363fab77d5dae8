import Glibc
package import Logging
package import NIOCore
package import PGCloneStreams
import Synchronization

/// The sizes of a multipart upload's parts. The total size is unknown while pg_dump runs, so they
/// grow: `base` for the first `partsPerSize` parts, then doubling every `partsPerSize` parts, up to
/// S3's 5 GiB. With 5 MiB and 900, S3's largest object (5 TiB) takes about 9,130 of its 10,000
/// parts; the first 900 parts (4.4 GiB of dump) stay at 5 MiB.
package struct PartSchedule: Sendable, Hashable {
    package var base: Int
    package var partsPerSize: Int
    /// Parts up to this size are held in memory; larger ones are spooled to disk.
    package var memoryLimit: Int

    package static let maximumParts = 10_000
    package static let maximumPartSize = 5 << 30

    package init(base: Int, partsPerSize: Int, memoryLimit: Int) {
        self.base = base
        self.partsPerSize = partsPerSize
        self.memoryLimit = memoryLimit
    }

    package func size(ofPart number: Int) -> Int {
        min(Self.maximumPartSize, base << min((number - 1) / partsPerSize, 30))
    }
}

/// A part's bytes: in memory, or in a spooled file.
package enum PartBody: Sendable {
    case memory(ByteBuffer)
    case file(SpooledPart)

    package var size: Int {
        switch self {
        case .memory(let buffer): buffer.readableBytes
        case .file(let part): part.size
        }
    }
}

/// Cuts a stream into the parts of `schedule`: in memory up to its memory limit, larger ones spooled
/// to files in `spoolDirectory` (see ``SpooledPart``). Spooling blocks on file I/O, so the cutter is
/// an actor on its own executor, and each part is cut in one isolated call, not one hop per chunk.
package actor PartCutter {
    private let executor = DispatchQueueExecutor(label: "pgclone.parts")
    package nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    private let chunks: ChunkReader
    package nonisolated let schedule: PartSchedule
    /// Where parts above the memory limit are spooled: `TMPDIR`, else /tmp.
    package nonisolated let spoolDirectory: String
    private let logger: Logger
    /// Parts cut so far.
    package private(set) var count = 0

    package init(_ stream: ByteStream, schedule: PartSchedule, spoolDirectory: String, logger: Logger) {
        chunks = ChunkReader(stream)
        self.schedule = schedule
        self.spoolDirectory = spoolDirectory
        self.logger = logger
    }

    /// The next part, `nil` at the end of the stream. Only the last part is short.
    /// - Throws: the stream's error; ``S3ClientError`` (`unavailable`) if a part cannot be spooled.
    package func next() async throws -> PartBody? {
        let size = schedule.size(ofPart: count + 1)
        let part: PartBody
        if size <= schedule.memoryLimit {
            var buffer = ByteBufferAllocator().buffer(capacity: size)
            while buffer.readableBytes < size, var chunk = try await chunks.next(atMost: size - buffer.readableBytes) {
                buffer.writeBuffer(&chunk)
            }
            part = .memory(buffer)
        } else {
            let file = try await spoolPart(size: size)
            part = .file(file)
            if file.size > 0 {
                logger.debug("spooled upload part \(count + 1) (\(ByteCount(bytes: file.size))) to \(spoolDirectory)")
            }
        }
        guard part.size > 0 else { return nil }
        count += 1
        return part
    }

    /// Writes the next `size` bytes of the stream (fewer at its end) to a new spooled file.
    private func spoolPart(size: Int) async throws -> SpooledPart {
        let descriptor = try SpooledPart.createFile(in: spoolDirectory)
        var written = 0
        do {
            while written < size, let chunk = try await chunks.next(atMost: size - written) {
                guard writeAll(descriptor, chunk, at: written) else {
                    throw SpooledPart.error("cannot write an upload part to \(spoolDirectory)")
                }
                written += chunk.readableBytes
            }
        } catch {
            close(descriptor)
            throw error
        }
        return SpooledPart(descriptor: descriptor, size: written)
    }
}

/// A stream's chunks, cut to the sizes asked for: what is left of a chunk is kept for the next call.
final class ChunkReader {
    private var iterator: ByteStream.AsyncIterator
    private var carry: ByteBuffer?

    init(_ stream: ByteStream) {
        iterator = stream.makeAsyncIterator()
    }

    /// The next chunk of at most `limit` bytes; `nil` at the end of the stream.
    func next(atMost limit: Int) async throws -> ByteBuffer? {
        var pending = carry
        carry = nil
        if pending == nil { pending = try await iterator.next() }
        guard var chunk = pending else { return nil }
        if chunk.readableBytes > limit {
            carry = chunk.getSlice(at: chunk.readerIndex + limit, length: chunk.readableBytes - limit)
            chunk = chunk.getSlice(at: chunk.readerIndex, length: limit)!
        }
        return chunk
    }
}

/// Passes a value (a part's buffer or file) to a task without keeping a reference to it: the task
/// takes it once, so it is freed as soon as the task is done with it.
package final class Handover<Value: Sendable>: Sendable {
    private let value: Mutex<Value?>

    package init(_ value: sending Value) {
        self.value = Mutex(value)
    }

    /// The value, the first time; `nil` after.
    package func take() -> Value? {
        value.withLock { value in
            defer { value = nil }
            return value
        }
    }
}
