import Logging
import NIOCore
import PGCloneMetrics
import PGCloneS3
package import PGCloneStreams

extension S3Storage {
    /// Metadata stored with every dump object.
    nonisolated var objectHeaders: [String] {
        ["x-amz-meta-pgclone-format: zstd-custom-archive", "x-amz-meta-pgclone-version: \(pgcloneVersion)"]
    }

    package func write(_ key: DumpKey, from stream: ByteStream) async throws -> Int {
        let objectKey = objectKey(key)
        let client = self.client
        let headers = objectHeaders
        let cutter = PartCutter(
            stream,
            schedule: configuration.partSchedule,
            spoolDirectory: configuration.spoolDirectory,
            logger: logger
        )
        let first: Handover<PartBody>
        do {
            // Scoped, so that no reference to the first part outlives its upload.
            let part = try await cutter.next()
            guard case .memory(let buffer) = part, buffer.readableBytes == configuration.partSchedule.size(ofPart: 1)
            else {
                // Less than one part: a single PutObject.
                let body: ByteBuffer
                if case .memory(let buffer) = part { body = buffer } else { body = ByteBuffer() }
                try await publishing(objectKey) {
                    try await mapErrors {
                        try await withoutCancellation {
                            try await client.putObject(objectKey, body: body, headers: headers)
                        }
                    }
                }
                return body.readableBytes
            }
            first = Handover(PartBody.memory(buffer))
        }
        // Not cancellable: an interruption after S3 created the upload but before pgclone read its
        // ID would leave an upload nobody aborts. Cancellation is noticed right after.
        let uploadID: String
        do {
            uploadID = try await mapErrors {
                try await withoutCancellation { try await client.createMultipartUpload(objectKey, headers: headers) }
            }
        } catch is CancellationError {
            // Cut short unanswered after an interrupt (``Interruption``): S3 may have made it.
            logger.warning(
                """
                the interrupt cut short the creation of the multipart upload of \(objectKey) unanswered: if S3 made \
                it, it holds no part and a lifecycle rule (AbortIncompleteMultipartUpload) removes it
                """
            )
            throw CancellationError()
        }
        do {
            try Task.checkCancellation()
            let (total, parts) = try await uploadParts(objectKey, uploadID: uploadID, first: first) {
                try await cutter.next()
            }
            try await publishing(objectKey) {
                try await mapErrors {
                    try await withoutCancellation {
                        try await client.completeMultipartUpload(objectKey, uploadID: uploadID, parts: parts)
                    }
                }
            }
            return total
        } catch {
            do {
                try await withoutCancellation { try await client.abortMultipartUpload(objectKey, uploadID: uploadID) }
            } catch let abortError {
                let abortError = abortError is CancellationError ? "the endpoint did not answer" : "\(abortError)"
                logger.warning(
                    """
                    could not abort the multipart upload of \(objectKey) (\(abortError)); it keeps its parts until a \
                    lifecycle rule removes them
                    """
                )
            }
            throw error
        }
    }

    /// Runs the request that makes the object visible, which is not cut short: an interrupt while
    /// it is in flight is acted on once S3 has answered (an aborted request could still be carried
    /// out after pgclone looked). If it fails or was interrupted, the object is deleted if S3 made
    /// it, so that a failed dump is never visible.
    private func publishing(_ objectKey: String, _ request: () async throws -> Void) async throws {
        var answered = false
        do {
            try await request()
            answered = true
            try Task.checkCancellation()
        } catch {
            let client = self.client
            do {
                let found = try await withoutCancellation { () -> Bool in
                    guard try await client.head(objectKey) != nil else { return false }
                    try await client.deleteObject(objectKey)
                    return true
                }
                // Cut short unanswered after an interrupt (``Interruption``): S3 may still make the
                // object after the check found none.
                if !answered, error is CancellationError, !found {
                    logger.warning(
                        """
                        the interrupt cut short the request that makes \(objectKey) unanswered: S3 may still make \
                        it, holding the whole dump, and `pgclone ls` lists it if it does
                        """
                    )
                }
            } catch is CancellationError {
                // The interrupt's grace ran out (``Interruption``): S3 did not answer.
                logger.warning(
                    """
                    could not check whether S3 made \(objectKey) before the interrupt (the endpoint did not answer); \
                    if it did, it holds the whole dump, and `pgclone ls` lists it
                    """
                )
            } catch let cleanupError {
                logger.warning(
                    "the dump failed, and removing the object \(objectKey) it may have left failed too: \(cleanupError)"
                )
            }
            throw error
        }
    }

    /// Uploads the parts, at most `uploadConcurrency` at a time while the next one fills; returns
    /// the bytes uploaded and the parts for CompleteMultipartUpload.
    private func uploadParts(
        _ objectKey: String,
        uploadID: String,
        first: Handover<PartBody>,
        next: () async throws -> PartBody?
    ) async throws -> (Int, [(number: Int, etag: String)]) {
        let firstSize = configuration.partSchedule.size(ofPart: 1)
        let client = self.client
        let limit = configuration.uploadConcurrency
        let s3Meter = client.metrics.s3
        let partsBuffer = client.metrics.buffer(.uploadParts)
        s3Meter.setPartLimit(limit)
        let memoryParts = (limit + 1) * configuration.partSchedule.memoryLimit
        partsBuffer.setCapacity(memoryParts)
        client.metrics.setMemoryBudget([("s3_parts", memoryParts)])
        return try await mapErrors {
            try await withThrowingTaskGroup(of: (Int, String).self) { group in
                var etags: [Int: String] = [:]
                var running = 0
                var number = 0
                var total = firstSize
                // Each part is handed to its upload task, which drops it when the part is sent: a
                // finished upload must not keep its buffer (or file) until the task group reaps it.
                var part: Handover<PartBody>? = first
                while let handover = part {
                    number += 1
                    guard number <= PartSchedule.maximumParts else {
                        throw PGCloneError(.storageFailed, "the dump is larger than S3's 10,000 parts allow")
                    }
                    if running >= limit, let (done, etag) = try await group.next() {
                        etags[done] = etag
                        running -= 1
                    }
                    let partNumber = number
                    group.addTask {
                        let body = handover.take()!
                        var held = 0
                        if case .memory(let buffer) = body { held = buffer.readableBytes }
                        s3Meter.partStarted()
                        partsBuffer.changed(by: held)
                        do {
                            let etag = try await client.uploadPart(
                                objectKey,
                                uploadID: uploadID,
                                number: partNumber,
                                body: body
                            )
                            partsBuffer.changed(by: -held)
                            s3Meter.partFinished()
                            return (partNumber, etag)
                        } catch {
                            partsBuffer.changed(by: -held)
                            s3Meter.partFinished()
                            throw error
                        }
                    }
                    running += 1
                    // The next part fills while this one uploads.
                    part = try await next().map { body in
                        total += body.size
                        return Handover(body)
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
