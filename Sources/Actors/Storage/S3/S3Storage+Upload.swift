import Logging
import NIOCore
package import PGCloneStreams

extension S3Storage {
    /// Metadata stored with every dump object.
    var objectHeaders: [String] {
        ["x-amz-meta-pgclone-format: zstd-custom-archive", "x-amz-meta-pgclone-version: \(pgcloneVersion)"]
    }

    package func write(_ key: DumpKey, from stream: ByteStream) async throws -> Int {
        let objectKey = objectKey(key)
        let partSize = configuration.uploadPartSize
        let client = self.client
        var iterator = stream.makeAsyncIterator()
        var carry: ByteBuffer?
        /// The next part: up to `partSize` bytes from the stream; `nil` at its end.
        func nextPart() async throws -> ByteBuffer? {
            var part = ByteBufferAllocator().buffer(capacity: partSize)
            while part.readableBytes < partSize {
                var pending = carry
                if pending == nil { pending = try await iterator.next() }
                guard var chunk = pending else { break }
                carry = nil
                let room = partSize - part.readableBytes
                if chunk.readableBytes > room {
                    carry = chunk.getSlice(at: chunk.readerIndex + room, length: chunk.readableBytes - room)
                    chunk = chunk.getSlice(at: chunk.readerIndex, length: room)!
                }
                part.writeBuffer(&chunk)
            }
            return part.readableBytes > 0 ? part : nil
        }

        let first: BufferHandover
        do {
            // Scoped, so that no reference to the first part outlives its upload.
            let part = try await nextPart()
            guard let part, part.readableBytes == partSize else {
                // Less than one part: a single PutObject.
                let body = part ?? ByteBuffer()
                try await publishing(objectKey) {
                    try await mapErrors { try await client.putObject(objectKey, body: body, headers: objectHeaders) }
                }
                return body.readableBytes
            }
            first = BufferHandover(part)
        }
        // Not cancellable: an interruption after S3 created the upload but before pgclone read its
        // ID would leave an upload nobody aborts. Cancellation is noticed right after.
        let headers = objectHeaders
        let uploadID = try await mapErrors {
            try await withoutCancellation { try await client.createMultipartUpload(objectKey, headers: headers) }
        }
        do {
            try Task.checkCancellation()
            let (total, parts) = try await uploadParts(objectKey, uploadID: uploadID, first: first, partSize: partSize, next: nextPart)
            try await publishing(objectKey) {
                try await mapErrors { try await client.completeMultipartUpload(objectKey, uploadID: uploadID, parts: parts) }
            }
            return total
        } catch {
            do {
                try await withoutCancellation { try await client.abortMultipartUpload(objectKey, uploadID: uploadID) }
            } catch let abortError {
                logger.error("could not abort the multipart upload of \(objectKey) (\(abortError)); it keeps its parts until a lifecycle rule removes them")
            }
            throw error
        }
    }

    /// Runs the request that makes the object visible. If it fails or is interrupted, S3 may still
    /// have carried it out: then the object is deleted, so that a failed dump is never visible.
    private func publishing(_ objectKey: String, _ request: () async throws -> Void) async throws {
        do {
            try await request()
        } catch {
            let client = self.client
            do {
                try await withoutCancellation {
                    if try await client.head(objectKey) != nil { try await client.deleteObject(objectKey) }
                }
            } catch let cleanupError {
                logger.error("the dump failed, and removing the object \(objectKey) it may have left failed too: \(cleanupError)")
            }
            throw error
        }
    }

    /// Uploads the parts, at most `uploadConcurrency` at a time while the next one fills; returns
    /// the bytes uploaded and the parts for CompleteMultipartUpload.
    private func uploadParts(
        _ objectKey: String,
        uploadID: String,
        first: BufferHandover,
        partSize: Int,
        next: () async throws -> ByteBuffer?
    ) async throws -> (Int, [(number: Int, etag: String)]) {
        let client = self.client
        let limit = configuration.uploadConcurrency
        return try await mapErrors {
            try await withThrowingTaskGroup(of: (Int, String).self) { group in
                var etags: [Int: String] = [:]
                var running = 0
                var number = 0
                var total = partSize
                // Each part is handed to its upload task, which drops it when the part is sent: a
                // finished upload must not keep its buffer until the task group reaps it.
                var part: BufferHandover? = first
                while let handover = part {
                    number += 1
                    guard number <= 10_000 else {
                        throw PGCloneError(
                            .storageFailed,
                            "the dump is larger than 10,000 parts of \(ByteCount(bytes: configuration.uploadPartSize)); raise PGCLONE_S3_PART_SIZE"
                        )
                    }
                    if running >= limit, let (done, etag) = try await group.next() {
                        etags[done] = etag
                        running -= 1
                    }
                    let partNumber = number
                    group.addTask {
                        let body = handover.take()!
                        return (partNumber, try await client.uploadPart(objectKey, uploadID: uploadID, number: partNumber, body: body))
                    }
                    running += 1
                    // The next part fills while this one uploads.
                    part = try await next().map { buffer in
                        total += buffer.readableBytes
                        return BufferHandover(buffer)
                    }
                }
                while let (done, etag) = try await group.next() {
                    etags[done] = etag
                }
                return (total, etags.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
            }
        }
    }
}
