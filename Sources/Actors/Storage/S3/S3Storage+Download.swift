import NIOCore
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

    /// Ranged GETs of `partSize`, up to `downloadConcurrency` parts held at once (in flight or
    /// waiting for their turn), written to `output` in order.
    private func download(_ objectKey: String, info: S3Client.ObjectInfo, into output: ByteStream.Source) async throws {
        let partSize = configuration.downloadPartSize
        let partCount = (info.size + partSize - 1) / partSize
        let limit = configuration.downloadConcurrency
        let client = self.client
        try await withThrowingTaskGroup(of: (Int, ByteBuffer).self) { group in
            var nextToStart = 0
            var nextToWrite = 0
            var running = 0
            var ready: [Int: ByteBuffer] = [:]
            func startParts() {
                while nextToStart < partCount && running + ready.count < limit {
                    let index = nextToStart
                    let range = index * partSize..<min(info.size, (index + 1) * partSize)
                    group.addTask {
                        (index, try await client.get(objectKey, range: range, etag: info.etag, part: index + 1))
                    }
                    nextToStart += 1
                    running += 1
                }
            }
            startParts()
            while nextToWrite < partCount, let (index, part) = try await group.next() {
                running -= 1
                ready[index] = part
                while let part = ready[nextToWrite] {
                    var offset = 0
                    while offset < part.readableBytes {
                        let length = min(chunkSize, part.readableBytes - offset)
                        try await output.write(part.getSlice(at: part.readerIndex + offset, length: length)!)
                        offset += length
                    }
                    ready[nextToWrite] = nil
                    nextToWrite += 1
                    startParts()
                }
                startParts()
            }
        }
    }
}
