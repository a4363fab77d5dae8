import Logging
import NIOCore
import PGCloneMetrics
import PGCloneS3
package import PGCloneStreams

extension S3Storage {
    package func read(_ key: DumpKey, into output: ByteStream.Source) async throws -> Int {
        try await output.finishing {
            let objectKey = objectKey(key)
            guard let info = try await mapErrors({ try await client.head(objectKey) }) else {
                throw PGCloneError(.objectNotFound, "no dump \(key) in \(location)")
            }
            try await mapErrors { try await download(objectKey, info: info, into: output) }
            return info.size
        }
    }

    /// Ranged GETs of `downloadPartSize(forObjectOf:)`, up to `downloadConcurrency` in flight. Each streams into
    /// a window of its own (`downloadWindow`), read in order: the part being read drains as it
    /// arrives, the ones ahead of it stop at their window (their transfer threads block, and TCP
    /// holds the rest), so memory is concurrency × window whatever the part size.
    private func download(_ objectKey: String, info: S3Client.ObjectInfo, into output: ByteStream.Source) async throws {
        let partSize = configuration.downloadPartSize(forObjectOf: info.size)
        let partCount = (info.size + partSize - 1) / partSize
        let limit = configuration.downloadConcurrency
        let window = configuration.downloadWindow
        let client = self.client
        let chunkSize = self.chunkSize
        let metrics = client.metrics
        logger.debug(
            """
            downloading \(partCount) ranges of \(ByteCount(bytes: partSize)), \(limit) in flight, each through a \
            \(ByteCount(bytes: window)) window
            """
        )
        metrics.s3.setPartLimit(limit)
        metrics.setMemoryBudget([("s3_parts", limit * window)])
        let partObserver = metrics.observer(
            buffer: .downloadParts,
            capacity: .bytes(limit * window),
            producer: nil,
            consumer: nil
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            var waiting: [Int: ByteStream] = [:]
            var nextToStart = 0
            func startParts(through last: Int) {
                while nextToStart < partCount && nextToStart <= last {
                    let index = nextToStart
                    let range = index * partSize..<min(info.size, (index + 1) * partSize)
                    let (stream, source) = ByteStream.makeStream(
                        backpressureStrategy: .capacity(.bytes(window)),
                        observer: partObserver
                    )
                    waiting[index] = stream
                    group.addTask {
                        metrics.s3.partStarted()
                        defer { metrics.s3.partFinished() }
                        try await withTaskCancellationHandler {
                            try await source.finishing {
                                try await client.get(
                                    objectKey,
                                    range: range,
                                    etag: info.etag,
                                    part: index + 1,
                                    into: source,
                                    chunkSize: chunkSize
                                )
                            }
                        } onCancel: {
                            // Releases a transfer thread blocked on the full window.
                            stream.cancel()
                        }
                    }
                    nextToStart += 1
                }
            }
            do {
                for index in 0..<partCount {
                    startParts(through: index + limit - 1)
                    for try await chunk in waiting.removeValue(forKey: index)! {
                        try await output.write(chunk)
                    }
                }
            } catch {
                for stream in waiting.values { stream.cancel() }
                throw error
            }
            try await group.waitForAll()
        }
    }
}
