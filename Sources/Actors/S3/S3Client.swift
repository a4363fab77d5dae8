import Foundation
package import Logging
package import NIOCore
package import PGCloneMetrics
package import PGCloneStreams

/// pgclone's own S3 client on libcurl: the handful of operations dumps need, signed with SigV4 by
/// libcurl (its quirks handled here: sorted, encoded queries, `name=` for valueless parameters, the
/// payload hash header, the session token), with retries and exponential backoff with full jitter
/// for throttling, server errors, resets and stalls.
package struct S3Client: Sendable {
    package let configuration: S3Configuration
    let credentials: AWSCredentialsProvider
    let logger: Logger
    package let metrics: PGCloneMetrics
    /// Attempts per request, the first included.
    var maximumAttempts = 6
    var baseDelay: Duration = .milliseconds(200)
    var maximumDelay: Duration = .seconds(8)

    package init(
        configuration: S3Configuration,
        credentials: AWSCredentialsProvider,
        metrics: PGCloneMetrics,
        logger: Logger
    ) {
        self.configuration = configuration
        self.credentials = credentials
        self.metrics = metrics
        self.logger = logger
    }

    // MARK: Operations

    package struct ObjectInfo: Sendable {
        package var size: Int
        package var etag: String
    }

    /// HeadObject; `nil` if there is no such object.
    package func head(_ key: String) async throws -> ObjectInfo? {
        let response = try await send(.headObject, "HEAD", key, accept: [200, 404])
        guard response.status == 200 else { return nil }
        return ObjectInfo(
            size: Int(response.headers["content-length"] ?? "") ?? 0,
            etag: response.headers["etag"] ?? ""
        )
    }

    package struct ListPage: Sendable {
        package var objects: [(key: String, size: Int)]
        package var continuationToken: String?
    }

    /// One page of ListObjectsV2.
    package func list(prefix: String, continuationToken: String?) async throws -> ListPage {
        var query = [("list-type", "2"), ("prefix", prefix)]
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        let response = try await send(.listObjectsV2, "GET", "", query: query)
        guard let document = S3XMLElement.parse(Array(response.body.readableBytesView)) else {
            throw S3ClientError(.unavailable, "S3 ListObjectsV2 returned a response that is not XML")
        }
        let objects = document.all("Contents").compactMap { entry -> (String, Int)? in
            guard let key = entry.first("Key")?.text else { return nil }
            return (key, Int(entry.first("Size")?.text ?? "") ?? 0)
        }
        let truncated = document.first("IsTruncated")?.text == "true"
        return ListPage(
            objects: objects,
            continuationToken: truncated ? document.first("NextContinuationToken")?.text : nil
        )
    }

    /// Streams bytes `range` of the object, which must still have `etag` (If-Match), into `source`
    /// (which it does not finish). A transfer cut off in the middle resumes from the byte where it
    /// stopped, so the stream sees every byte once.
    package func get(
        _ key: String,
        range: Range<Int>,
        etag: String,
        part: Int,
        into source: ByteStream.Source,
        chunkSize: Int
    ) async throws {
        var delivered = 0
        try await withRetries(.getObject, detail: "part \(part)") {
            let start = range.lowerBound + delivered
            do {
                let response = try await send(
                    .getObject,
                    "GET",
                    key,
                    headers: ["If-Match: \(etag)"],
                    range: "\(start)-\(range.upperBound - 1)",
                    responseStream: (source, chunkSize),
                    accept: [206],
                    retrying: false
                )
                delivered += response.delivered
            } catch let partial as PartialTransfer {
                delivered += partial.delivered
                throw partial
            }
            guard delivered == range.count else {
                throw ShortRead(expected: range.count, received: delivered)
            }
        }
    }

    /// Which end of an object a ranged GET reads.
    package enum End: Sendable {
        case head, tail
    }

    /// The first or last `length` bytes of an object (all of it, if it is shorter: a ranged GET
    /// answers with what there is, and an empty object with 416).
    package func getBytes(_ key: String, _ end: End, length: Int) async throws -> [UInt8] {
        let response = try await send(
            .getObject,
            "GET",
            key,
            range: end == .head ? "0-\(length - 1)" : "-\(length)",
            responseLimit: length,
            accept: [200, 206, 416]
        )
        guard response.status != 416 else { return [] }
        let body = response.body.readableBytesView
        return Array(end == .head ? body.prefix(length) : body.suffix(length))
    }

    /// CreateMultipartUpload; returns the upload ID.
    package func createMultipartUpload(_ key: String, headers: [String]) async throws -> String {
        let response = try await send(.createMultipartUpload, "POST", key, query: [("uploads", "")], headers: headers)
        guard let uploadID = S3XMLElement.parse(Array(response.body.readableBytesView))?.first("UploadId")?.text,
            !uploadID.isEmpty
        else {
            throw S3ClientError(.unavailable, "S3 CreateMultipartUpload returned no upload ID")
        }
        return uploadID
    }

    /// UploadPart; returns the part's ETag.
    package func uploadPart(_ key: String, uploadID: String, number: Int, body: PartBody) async throws -> String {
        let response: HTTPResponse
        switch body {
        case .memory(let buffer):
            response = try await send(
                .uploadPart,
                "PUT",
                key,
                query: [("partNumber", "\(number)"), ("uploadId", uploadID)],
                body: buffer
            )
        case .file(let file):
            response = try await send(
                .uploadPart,
                "PUT",
                key,
                query: [("partNumber", "\(number)"), ("uploadId", uploadID)],
                bodyFile: file
            )
        }
        guard let etag = response.headers["etag"] else {
            throw S3ClientError(.unavailable, "S3 UploadPart returned no ETag for part \(number)")
        }
        return etag
    }

    package func completeMultipartUpload(
        _ key: String,
        uploadID: String,
        parts: [(number: Int, etag: String)]
    ) async throws {
        var xml = "<CompleteMultipartUpload>"
        for part in parts {
            xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(escapeXML(part.etag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let response = try await send(
            .completeMultipartUpload,
            "POST",
            key,
            query: [("uploadId", uploadID)],
            headers: ["Content-Type: application/xml"],
            body: ByteBuffer(string: xml)
        )
        // Complete can fail after a 200 status, with an <Error> document in the body.
        if let document = S3XMLElement.parse(Array(response.body.readableBytesView)), document.name == "Error" {
            throw S3ServiceError(operation: "CompleteMultipartUpload", status: response.status, document: document)
        }
    }

    package func abortMultipartUpload(_ key: String, uploadID: String) async throws {
        _ = try await send(
            .abortMultipartUpload,
            "DELETE",
            key,
            query: [("uploadId", uploadID)],
            accept: [204, 200, 404]
        )
    }

    package func putObject(_ key: String, body: ByteBuffer, headers: [String]) async throws {
        _ = try await send(.putObject, "PUT", key, headers: headers, body: body)
    }

    package func deleteObject(_ key: String) async throws {
        _ = try await send(.deleteObject, "DELETE", key, accept: [204, 200])
    }

    // MARK: Requests

    /// Sends one request (retrying unless `retrying` is false); returns the response if its status
    /// is in `accept`, else throws ``S3ServiceError``.
    private func send(
        _ operation: S3Operation,
        _ method: String,
        _ key: String,
        query: [(String, String)] = [],
        headers: [String] = [],
        body: ByteBuffer? = nil,
        bodyFile: SpooledPart? = nil,
        range: String? = nil,
        responseStream: (source: ByteStream.Source, chunkSize: Int)? = nil,
        responseLimit: Int = 16 << 20,
        accept: Set<Int> = [200],
        retrying: Bool = true
    ) async throws -> HTTPResponse {
        let attempt = { () async throws -> HTTPResponse in
            let credentials = try await credentials.credentials()
            var request = HTTPRequest(method: method, url: configuration.url(key: key, query: S3Encoding.query(query)))
            request.headers = headers + ["x-amz-content-sha256: UNSIGNED-PAYLOAD"]
            if let token = credentials.sessionToken { request.headers.append("x-amz-security-token: \(token)") }
            request.signing = .init(
                accessKey: credentials.accessKeyID,
                secretKey: credentials.secretAccessKey,
                provider: "aws:amz:\(configuration.region):s3"
            )
            request.body = body
            request.bodyFile = bodyFile
            request.range = range
            request.responseStream = responseStream
            request.responseLimit = responseLimit
            request.caBundle = configuration.caBundle
            request.timeouts.stall = configuration.stallTimeout
            let start = ContinuousClock.now
            let sentBytes = body?.readableBytes ?? bodyFile?.size ?? 0
            let response: HTTPResponse
            do {
                response = try await HTTPTransfer.perform(request)
            } catch let partial as PartialTransfer {
                metrics.s3.request(
                    operation,
                    status: nil,
                    duration: .now - start,
                    sentBytes: sentBytes,
                    receivedBytes: partial.received.readableBytes + partial.delivered
                )
                throw partial
            }
            metrics.s3.request(
                operation,
                status: response.status,
                duration: .now - start,
                sentBytes: sentBytes,
                receivedBytes: response.body.readableBytes + response.delivered
            )
            guard accept.contains(response.status) else {
                let document = S3XMLElement.parse(Array(response.body.readableBytesView))
                throw S3ServiceError(
                    operation: operation.rawValue,
                    status: response.status,
                    document: document,
                    credentials: credentials,
                    headers: response.headers
                )
            }
            return response
        }
        return retrying ? try await withRetries(operation, detail: key, attempt) : try await attempt()
    }

    /// Runs `body` until it succeeds, retrying transient failures after exponential backoff with full
    /// jitter; each retry is logged.
    private func withRetries<Result>(
        _ operation: S3Operation,
        detail: String,
        _ body: () async throws -> Result
    ) async throws -> Result {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch {
                // Not after an interrupt, which a request run apart from the interrupted task
                // (clean-up) heeds this way.
                guard let reason = Self.retryReason(error), attempt < maximumAttempts,
                    Interruption.current?.hasHappened != true
                else {
                    throw error
                }
                metrics.s3.retried(operation, reason: reason)
                let ceiling = min(maximumDelay, baseDelay * (1 << min(attempt - 1, 16)))
                let delay = Duration.milliseconds(Int64.random(in: 0...max(1, ceiling.milliseconds)))
                logger.warning(
                    """
                    S3 \(operation.rawValue)\(detail.isEmpty ? "" : " " + detail): \(reason.description) \
                    (\(error)); retrying in \(delay.formattedSeconds), attempt \(attempt + 1) of \
                    \(maximumAttempts)
                    """
                )
                try await Task.sleep(for: delay)
                attempt += 1
            }
        }
    }

    /// Why `error` is worth another attempt, or `nil` if it is not.
    static func retryReason(_ error: any Error) -> RetryReason? {
        switch error {
        case let error as S3ServiceError:
            if error.status == 503 || error.status == 429 || error.code == "SlowDown" { return .throttled }
            if error.status >= 500 { return .serverError }
            if error.code == "RequestTimeout" { return .timeout }
            return nil
        case let error as PartialTransfer:
            if error.cause.isTLSVerificationFailure { return nil }
            return error.cause.isTimeout ? .timeout : .connection
        case is ShortRead:
            return .shortRead
        default:
            return nil
        }
    }

    private func escapeXML(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// A ranged GET ended early without an error.
package struct ShortRead: Error, CustomStringConvertible {
    var expected: Int
    var received: Int
    package var description: String { "received \(received) of \(expected) bytes" }
}

/// S3 answered with an error status.
package struct S3ServiceError: Error, Sendable, CustomStringConvertible {
    package var operation: String
    package var status: Int
    /// S3's error code (`NoSuchBucket`, `SignatureDoesNotMatch`…), if the body had one.
    package var code: String?
    package var message: String?
    /// Where the credentials used came from, for credential errors.
    package var credentialsSource: String?
    /// The bucket's region, which S3 names (`x-amz-bucket-region`) when a request went to another
    /// region's endpoint (301 PermanentRedirect, or 400 AuthorizationHeaderMalformed).
    package var bucketRegion: String?

    init(
        operation: String,
        status: Int,
        document: S3XMLElement?,
        credentials: AWSCredentials? = nil,
        headers: [String: String] = [:]
    ) {
        self.operation = operation
        self.status = status
        code = document?.first("Code")?.text
        message = document?.first("Message")?.text
        credentialsSource = credentials?.source
        bucketRegion = headers["x-amz-bucket-region"] ?? document?.first("Region")?.text
    }

    /// The credentials were rejected.
    package var isCredentialError: Bool {
        ["InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"]
            .contains(code ?? "") || (status == 403 && code == nil)
    }

    package var description: String {
        let what = [code, message].compactMap { $0 }.joined(separator: ": ")
        let region =
            (status == 301 || code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect")
            ? bucketRegion.map { "; the bucket is in region \($0): set AWS_REGION=\($0)" } : nil
        return "S3 \(operation) failed with HTTP \(status)\(what.isEmpty ? "" : " (\(what))")\(region ?? "")"
    }
}

extension RetryReason {
    /// For the retry log line.
    var description: String {
        switch self {
        case .throttled: "throttled"
        case .serverError: "server error"
        case .timeout: "stalled or timed out"
        case .connection: "transfer interrupted"
        case .shortRead: "short read"
        }
    }
}
