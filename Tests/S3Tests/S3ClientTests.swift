import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PGCloneMetrics
import Synchronization
import Testing

@testable import PGCloneS3

/// The S3 client over its real transport (libcurl) against a scripted HTTP server in the test
/// process: what it signs and sends, what it retries, and what it gives up on.
@Suite struct S3ClientTests {
    private func client(_ server: ScriptedHTTPServer, metrics: PGCloneMetrics) throws -> S3Client {
        let configuration = try S3Configuration(
            location: "s3://bucket/dumps",
            environment: ["PGCLONE_S3_ENDPOINT_URL": "http://127.0.0.1:\(server.port)", "AWS_REGION": "eu-west-3"],
            profileRegion: nil,
            partsInFlight: 2,
            partSize: 1 << 20
        )
        let environment = [
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token",
        ]
        let credentials = AWSCredentialsProvider(
            environment: environment,
            files: AWSSharedFiles(environment: ["HOME": "/nonexistent"]),
            logger: Logger(label: "test")
        )
        var client = S3Client(
            configuration: configuration,
            credentials: credentials,
            metrics: metrics,
            logger: Logger(label: "test")
        )
        client.baseDelay = .milliseconds(1)
        return client
    }

    private var metrics: PGCloneMetrics { PGCloneMetrics(build: .init(version: "test", libraries: [])) }

    @Test func throttlingIsRetriedAndCounted() async throws {
        let slowDown = "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
        let server = try await ScriptedHTTPServer.start([
            .init(status: 503, body: slowDown),
            .init(status: 503, body: slowDown),
            .init(status: 200, headers: [("ETag", "\"abc\""), ("Content-Length", "42")]),
        ])
        defer { server.stop() }
        let metrics = self.metrics
        let info = try await client(server, metrics: metrics).head("dumps/db/x.dump")
        #expect(info?.size == 42)
        #expect(info?.etag == "\"abc\"")
        #expect(server.requests.map(\.method) == [.HEAD, .HEAD, .HEAD])
        let exposition = String(decoding: metrics.render(), as: UTF8.self)
        #expect(
            exposition.contains(#"pgclone_s3_retries_total{operation="HeadObject",reason="throttled"} 2"#),
            "\(exposition)"
        )
        #expect(
            exposition.contains(#"pgclone_s3_requests_total{operation="HeadObject",code="503"} 2"#),
            "\(exposition)"
        )
    }

    @Test func requestsAreSignedAndQueriesSorted() async throws {
        let server = try await ScriptedHTTPServer.start([
            .init(
                status: 200,
                body: "<InitiateMultipartUploadResult><UploadId>up/1</UploadId></InitiateMultipartUploadResult>"
            )
        ])
        defer { server.stop() }
        let uploadID = try await client(server, metrics: metrics).createMultipartUpload(
            "dumps/db/x y.dump",
            headers: []
        )
        #expect(uploadID == "up/1")
        let request = try #require(server.requests.first)
        #expect(request.method == .POST)
        #expect(request.uri == "/bucket/dumps/db/x%20y.dump?uploads=")
        let authorization = request.headers["Authorization"].first ?? ""
        #expect(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), "\(authorization)")
        #expect(authorization.contains("/eu-west-3/s3/aws4_request"), "\(authorization)")
        #expect(request.headers["x-amz-content-sha256"] == ["UNSIGNED-PAYLOAD"])
        #expect(request.headers["x-amz-security-token"] == ["token"])
        #expect(!authorization.contains("secret"))
    }

    @Test func rejectedCredentialsAreNotRetried() async throws {
        let server = try await ScriptedHTTPServer.start([
            .init(status: 403, body: "<Error><Code>InvalidAccessKeyId</Code><Message>No such key.</Message></Error>"),
            .init(status: 200),
        ])
        defer { server.stop() }
        let error = await #expect(throws: S3ServiceError.self) {
            try await client(server, metrics: metrics).deleteObject("dumps/db/x.dump")
        }
        #expect(error?.isCredentialError == true)
        #expect(error?.credentialsSource == "environment")
        #expect(error?.description == "S3 DeleteObject failed with HTTP 403 (InvalidAccessKeyId: No such key.)")
        #expect(server.requests.count == 1)
    }

    /// A bucket in another region than the request's: S3 names it, and so does the error.
    @Test func aBucketInAnotherRegionIsNamedWithTheFix() async throws {
        let redirect = """
            <Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed \
            using the specified endpoint.</Message></Error>
            """
        let server = try await ScriptedHTTPServer.start([
            .init(status: 301, headers: [("x-amz-bucket-region", "ap-south-1")], body: redirect)
        ])
        defer { server.stop() }
        let error = await #expect(throws: S3ServiceError.self) {
            try await client(server, metrics: metrics).list(prefix: "dumps/", continuationToken: nil)
        }
        #expect(error?.description.hasSuffix("; the bucket is in region ap-south-1: set AWS_REGION=ap-south-1") == true)
        #expect(server.requests.count == 1)
    }
}

/// An HTTP/1.1 server on a loopback port that answers requests with `responses` in order (the last
/// one again once they run out) and records what it was sent.
final class ScriptedHTTPServer: Sendable {
    struct Response: Sendable {
        var status: Int
        var headers: [(String, String)] = []
        var body = ""
    }

    struct Request: Sendable {
        var method: HTTPMethod
        var uri: String
        var headers: HTTPHeaders
    }

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let state: Mutex<(responses: [Response], requests: [Request])>
    let port: Int

    var requests: [Request] { state.withLock { $0.requests } }

    private init(group: MultiThreadedEventLoopGroup, channel: any Channel, responses: [Response]) {
        self.group = group
        self.channel = channel
        self.state = Mutex((responses, []))
        port = channel.localAddress?.port ?? 0
    }

    static func start(_ responses: [Response]) async throws -> ScriptedHTTPServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = ServerBox()
        let channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let scripted = ScriptedHTTPServer(group: group, channel: channel, responses: responses)
        server.value.withLock { $0 = scripted }
        return scripted
    }

    func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    fileprivate func answer(_ request: Request) -> Response {
        state.withLock { state in
            state.requests.append(request)
            return state.responses.count > 1 ? state.responses.removeFirst() : state.responses[0]
        }
    }

    private final class ServerBox: Sendable {
        let value = Mutex<ScriptedHTTPServer?>(nil)
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let server: ServerBox
        var head: HTTPRequestHead?

        init(server: ServerBox) {
            self.server = server
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): self.head = head
            case .body: break
            case .end:
                guard let head, let server = server.value.withLock({ $0 }) else { return }
                let response = server.answer(Request(method: head.method, uri: head.uri, headers: head.headers))
                var headers = HTTPHeaders(response.headers)
                if !headers.contains(name: "Content-Length") {
                    headers.add(name: "Content-Length", value: "\(response.body.utf8.count)")
                }
                let status = HTTPResponseStatus(statusCode: response.status)
                context.write(
                    wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
                    promise: nil
                )
                if head.method != .HEAD {
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: response.body)))), promise: nil)
                }
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
