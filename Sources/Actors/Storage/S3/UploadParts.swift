import Logging
import NIOCore
import PGCloneStreams

/// The sizes of a multipart upload's parts. The total size is unknown while pg_dump runs, so they
/// grow: `base` for the first `partsPerSize` parts, then doubling every `partsPerSize` parts, up to
/// S3's 5 GiB. With 5 MiB and 900, S3's largest object (5 TiB) takes about 9,130 of its 10,000
/// parts; the first 900 parts (4.4 GiB of dump) stay at 5 MiB.
struct PartSchedule: Sendable, Hashable {
    var base: Int
    var partsPerSize: Int
    /// Parts up to this size are held in memory; larger ones are spooled to disk.
    var memoryLimit: Int

    static let maximumParts = 10_000
    static let maximumPartSize = 5 << 30

    func size(ofPart number: Int) -> Int {
        min(Self.maximumPartSize, base << min((number - 1) / partsPerSize, 30))
    }
}

/// A part's bytes: in memory, or in a spooled file.
enum PartBody: Sendable {
    case memory(ByteBuffer)
    case file(SpooledPart)

    var size: Int {
        switch self {
        case .memory(let buffer): buffer.readableBytes
        case .file(let part): part.size
        }
    }
}

/// Cuts a stream into the parts of `schedule`, in memory or spooled.
struct PartCutter {
    private var iterator: ByteStream.AsyncIterator
    private var carry: ByteBuffer?
    let schedule: PartSchedule
    let spool: PartSpool
    let logger: Logger
    private(set) var count = 0

    init(_ stream: ByteStream, schedule: PartSchedule, spool: PartSpool, logger: Logger) {
        iterator = stream.makeAsyncIterator()
        self.schedule = schedule
        self.spool = spool
        self.logger = logger
    }

    /// The next part, `nil` at the end of the stream. Only the last part is short.
    mutating func next() async throws -> PartBody? {
        let size = schedule.size(ofPart: count + 1)
        let part: PartBody
        if size <= schedule.memoryLimit {
            var buffer = ByteBufferAllocator().buffer(capacity: size)
            while buffer.readableBytes < size, var chunk = try await nextChunk(atMost: size - buffer.readableBytes) {
                buffer.writeBuffer(&chunk)
            }
            part = .memory(buffer)
        } else {
            let file = try await spool.create()
            while file.size < size, let chunk = try await nextChunk(atMost: size - file.size) {
                try await spool.append(chunk, to: file)
            }
            part = .file(file)
            if file.size > 0 {
                logger.debug("spooled upload part \(count + 1) (\(ByteCount(bytes: file.size))) to \(spool.directory)")
            }
        }
        guard part.size > 0 else { return nil }
        count += 1
        return part
    }

    private mutating func nextChunk(atMost limit: Int) async throws -> ByteBuffer? {
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
