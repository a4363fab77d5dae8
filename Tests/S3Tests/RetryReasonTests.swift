import CPGCloneCurl
import NIOCore
import PGCloneMetrics
import Testing

@testable import PGCloneS3

/// Which failures the S3 client tries again, and under which `reason` label.
@Suite struct RetryReasonTests {
    private func serviceError(_ status: Int, code: String? = nil) -> S3ServiceError {
        let document = code.flatMap { S3XMLElement.parse(Array("<Error><Code>\($0)</Code></Error>".utf8)) }
        return S3ServiceError(operation: "GetObject", status: status, document: document)
    }

    private func transfer(_ code: CURLcode) -> PartialTransfer {
        PartialTransfer(cause: CurlError(code), received: ByteBuffer())
    }

    @Test func serviceErrors() {
        #expect(S3Client.retryReason(serviceError(503, code: "SlowDown")) == .throttled)
        #expect(S3Client.retryReason(serviceError(429)) == .throttled)
        #expect(S3Client.retryReason(serviceError(400, code: "SlowDown")) == .throttled)
        #expect(S3Client.retryReason(serviceError(500, code: "InternalError")) == .serverError)
        #expect(S3Client.retryReason(serviceError(502)) == .serverError)
        #expect(S3Client.retryReason(serviceError(400, code: "RequestTimeout")) == .timeout)
        // What another attempt cannot change.
        #expect(S3Client.retryReason(serviceError(403, code: "SignatureDoesNotMatch")) == nil)
        #expect(S3Client.retryReason(serviceError(404, code: "NoSuchKey")) == nil)
        #expect(S3Client.retryReason(serviceError(412, code: "PreconditionFailed")) == nil)
    }

    @Test func transfers() {
        #expect(S3Client.retryReason(transfer(CURLE_OPERATION_TIMEDOUT)) == .timeout)
        #expect(S3Client.retryReason(transfer(CURLE_RECV_ERROR)) == .connection)
        #expect(S3Client.retryReason(transfer(CURLE_COULDNT_CONNECT)) == .connection)
        #expect(S3Client.retryReason(transfer(CURLE_PEER_FAILED_VERIFICATION)) == nil)
        #expect(S3Client.retryReason(ShortRead(expected: 10, received: 4)) == .shortRead)
        #expect(S3Client.retryReason(S3ClientError(.unavailable, "x")) == nil)
        #expect(S3Client.retryReason(CancellationError()) == nil)
    }

    @Test func credentialErrorsAreTold() {
        #expect(serviceError(403, code: "InvalidAccessKeyId").isCredentialError)
        #expect(serviceError(400, code: "ExpiredToken").isCredentialError)
        #expect(serviceError(403).isCredentialError)
        #expect(!serviceError(403, code: "AccessDenied").isCredentialError)
        #expect(
            serviceError(403, code: "SignatureDoesNotMatch").description
                == "S3 GetObject failed with HTTP 403 (SignatureDoesNotMatch)"
        )
    }

    @Test func xmlResponsesAreRead() throws {
        let page = """
            <ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t&amp;2</NextContinuationToken>\
            <Contents><Key>a/b.dump</Key><Size>12</Size></Contents><Contents><Key>c</Key><Size>3</Size></Contents>\
            </ListBucketResult>
            """
        let document = try #require(S3XMLElement.parse(Array(page.utf8)))
        #expect(document.all("Contents").compactMap { $0.first("Key")?.text } == ["a/b.dump", "c"])
        #expect(document.first("NextContinuationToken")?.text == "t&2")
        #expect(S3XMLElement.parse(Array("not xml <".utf8)) == nil)
    }
}
