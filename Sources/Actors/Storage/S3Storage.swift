import Foundation
package import Logging
import NIOCore
package import PGCloneS3
import PGCloneStreams

/// The Storage stage for dumps in S3 (or an S3-compatible server) under `s3://bucket/prefix`.
///
/// Uploads are multipart (a single PutObject for a dump smaller than one part): the object exists
/// only once CompleteMultipartUpload succeeds, and any failure or cancellation aborts the upload.
/// Downloads are ranged GETs of the one object, several in flight, handed on in order.
///
/// An actor: it owns the S3 client (with its cached, refreshed credentials) and the transfer
/// meters of its job. A download or an upload produces or consumes its whole stream in one
/// isolated call; the bytes never hop through the actor chunk by chunk. It makes no blocking call
/// itself (libcurl's transfers run on threads of their own), so it runs on the shared pool.
package actor S3Storage: StorageBackend {
    package nonisolated let client: S3Client
    nonisolated let logger: Logger
    /// Bytes per chunk handed to the next stage.
    nonisolated let chunkSize: Int

    package init(client: S3Client, chunkSize: Int, logger: Logger) {
        self.client = client
        self.chunkSize = chunkSize
        self.logger = logger
    }

    nonisolated var configuration: S3Configuration { client.configuration }
    package nonisolated var buffersWrites: Bool { true }
    package nonisolated var location: String { configuration.location }

    nonisolated func objectKey(_ key: DumpKey) -> String { configuration.prefix + "\(key)" }

    // MARK: Listing

    package func list() async throws -> [StoredDump] {
        var dumps: [StoredDump] = []
        var token: String?
        repeat {
            let page = try await mapErrors {
                try await client.list(prefix: configuration.prefix, continuationToken: token)
            }
            for object in page.objects where object.key.hasPrefix(configuration.prefix) {
                if let key = DumpKey(parsing: String(object.key.dropFirst(configuration.prefix.count))) {
                    dumps.append(StoredDump(key: key, size: object.size))
                }
            }
            token = page.continuationToken
        } while token != nil
        return dumps.sorted { $0.key > $1.key }
    }

    package func readHead(_ key: DumpKey, length: Int) async throws -> [UInt8] {
        try await readBytes(key, .head, length: length)
    }

    package func readTail(_ key: DumpKey, length: Int) async throws -> [UInt8] {
        try await readBytes(key, .tail, length: length)
    }

    private func readBytes(_ key: DumpKey, _ end: S3Client.End, length: Int) async throws -> [UInt8] {
        do {
            return try await client.getBytes(objectKey(key), end, length: length)
        } catch let error as S3ServiceError where error.status == 404 || error.code == "InvalidObjectState" {
            // Gone since it was listed, or archived (Glacier) and not restored: this object only.
            let message = error.status == 404 ? "no dump \(key) in \(location)" : "\(error)"
            throw PGCloneError(.objectNotFound, message, cause: error)
        } catch {
            return try await mapErrors { throw error }
        }
    }

    package func find(_ key: DumpKey) async throws -> StoredDump? {
        try await mapErrors { try await client.head(objectKey(key)) }.map { StoredDump(key: key, size: $0.size) }
    }

    package func delete(_ key: DumpKey) async throws {
        try await mapErrors { try await client.deleteObject(objectKey(key)) }
    }

    /// Turns S3 and transfer errors into one line naming the location.
    nonisolated func mapErrors<Result>(_ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch let error as S3ServiceError {
            if error.isCredentialError {
                throw PGCloneError(
                    .storageFailed,
                    """
                    S3 rejected the credentials from \(error.credentialsSource ?? "the credential chain") for \
                    \(location): \(error)
                    """,
                    cause: error
                )
            }
            if error.status == 412 {
                throw PGCloneError(
                    .storageFailed,
                    """
                    the object changed in \(location) while it was being read (its ETag no longer matches); \
                    restore again
                    """,
                    cause: error
                )
            }
            if error.code == "NoSuchBucket" {
                throw PGCloneError(
                    .storageFailed,
                    "the bucket \(configuration.bucket) does not exist (\(location))",
                    cause: error
                )
            }
            throw PGCloneError(.storageFailed, "\(error) for \(location)", cause: error)
        } catch let error as PartialTransfer {
            if error.cause.isTLSVerificationFailure {
                throw PGCloneError(
                    .storageFailed,
                    """
                    TLS refused the S3 endpoint for \(location): \(error); if it uses a private CA, set \
                    AWS_CA_BUNDLE to that CA's certificate file
                    """,
                    cause: error.cause
                )
            }
            throw PGCloneError(.storageFailed, "cannot reach S3 for \(location): \(error)", cause: error.cause)
        }
    }
}

/// Runs `body` in a task that is not cancelled when the caller is: for clean-up that must happen
/// even when the operation was interrupted (aborting a multipart upload). Its S3 requests still
/// heed the interrupt (``Interruption``): none is retried after it, and none waits long after it.
func withoutCancellation<Result: Sendable>(_ body: @escaping @Sendable () async throws -> Result) async throws -> Result
{
    let interruption = Interruption.current ?? Interruption()
    return try await withTaskCancellationHandler {
        try await Interruption.$current.withValue(interruption) { try await Task { try await body() }.value }
    } onCancel: {
        interruption.interrupt()
    }
}
