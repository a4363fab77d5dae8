internal import CPGCloneCurl
import Dispatch
import Glibc
package import NIOCore
import PGCloneStreams
import Synchronization

/// One HTTP request, as S3 needs them: a method, a URL, signed headers, an optional body.
package struct HTTPRequest: Sendable {
    package var method: String
    package var url: String
    package var headers: [String] = []
    package var body: ByteBuffer?
    /// Or a body read from a spooled file (an upload part too large for memory).
    var bodyFile: SpooledPart?
    /// AWS Signature V4 by libcurl (`CURLOPT_AWS_SIGV4`); every header above is signed.
    var signing: Signing?
    /// `CURLOPT_RANGE`, e.g. `0-8388607`.
    var range: String?
    /// Largest response body accepted; a larger one fails the transfer.
    var responseLimit = 16 << 20
    /// A response body goes into a buffer of its own, or, if given, into this stream as it arrives,
    /// in chunks of `chunkSize`, the transfer's thread blocking while the stream is full (and the
    /// server's TCP window with it).
    var responseStream: (source: ByteStream.Source, chunkSize: Int)?
    package var timeouts = Timeouts()
    var caBundle: String?

    package init(method: String, url: String) {
        self.method = method
        self.url = url
    }

    struct Signing: Sendable {
        var accessKey: String
        var secretKey: String
        /// `aws:amz:us-east-1:s3`
        var provider: String
    }

    package struct Timeouts: Sendable {
        package var connect = 10
        /// A transfer slower than 1 byte/s for this long has stalled.
        package var stall = 30

        package init(connect: Int = 10, stall: Int = 30) {
            self.connect = connect
            self.stall = stall
        }
    }
}

/// The response: status, headers (names lowercased) and body.
package struct HTTPResponse: Sendable {
    package var status: Int
    package var headers: [String: String]
    package var body: ByteBuffer
    /// Body bytes written to `HTTPRequest.responseStream`.
    var delivered = 0
}

/// An interrupt that requests run apart from the interrupted task still heed (clean-up, and the
/// request that publishes a dump, which is not cut short at once: an aborted request could still
/// be carried out after pgclone looked). Once it has come, no request is retried, and one still
/// waiting ``grace`` after it (or after the request began, if later) is cut short and throws
/// `CancellationError`: a hung endpoint cannot hold an interrupted pgclone for minutes of stall
/// timeouts and retries (a container's grace period before SIGKILL is typically 30 s).
package final class Interruption: Sendable {
    /// The interruption the requests of this task heed, if any (set by the storage's
    /// `withoutCancellation`).
    @TaskLocal package static var current: Interruption?
    /// How long a request may still take after the interrupt: 5 s, in nanoseconds.
    static let grace: UInt64 = 5_000_000_000
    /// When it came (`DispatchTime` uptime nanoseconds), 0 until then.
    private let time = Atomic<UInt64>(0)

    package init() {}

    package func interrupt() {
        _ = time.compareExchange(expected: 0, desired: max(1, DispatchTime.now().uptimeNanoseconds), ordering: .relaxed)
    }

    package var hasHappened: Bool { time.load(ordering: .relaxed) != 0 }

    /// Whether a request that began at `start` has waited out its grace.
    func isPastGrace(since start: UInt64) -> Bool {
        let time = time.load(ordering: .relaxed)
        return time != 0 && DispatchTime.now().uptimeNanoseconds > max(time, start) + Self.grace
    }
}

/// Runs `HTTPRequest`s with libcurl, each on a thread of its own: `curl_easy_perform` blocks, and
/// must never block Swift's cooperative pool. Cancelling the calling task stops the transfer through
/// libcurl's progress callback.
package enum HTTPTransfer {
    package static func perform(_ request: HTTPRequest) async throws -> HTTPResponse {
        let context = TransferContext(request: request, interruption: Interruption.current)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResponse, any Error>) in
                // A queue of its own targets libdispatch's overcommitting root queue: a thread is added
                // rather than making other blocked transfers wait.
                DispatchQueue(label: "pgclone.http").async {
                    continuation.resume(with: Result { try context.run() })
                }
            }
        } onCancel: {
            context.cancel()
        }
    }
}

/// State shared with libcurl's callbacks for one transfer. Only the transfer's thread touches it
/// while it runs, except the atomic cancellation flag.
private final class TransferContext: @unchecked Sendable {
    let request: HTTPRequest
    private let cancelled = Atomic<Bool>(false)
    private let interruption: Interruption?
    /// When the transfer began (`DispatchTime` uptime nanoseconds), for ``interruption``'s grace.
    private let start = DispatchTime.now().uptimeNanoseconds
    var uploadOffset = 0
    var response: ByteBuffer
    var headers: [String: String] = [:]
    var status = 0
    var overflowed = false
    /// Streamed responses: the chunk being gathered, the bytes delivered, why delivery stopped.
    var pending = ByteBuffer()
    var delivered = 0
    var streamError: (any Error)?

    init(request: HTTPRequest, interruption: Interruption?) {
        self.request = request
        self.interruption = interruption
        self.response = ByteBuffer()
        if let (_, chunkSize) = request.responseStream {
            pending = ByteBufferAllocator().buffer(capacity: chunkSize)
        }
    }

    func cancel() { cancelled.store(true, ordering: .relaxed) }
    var isCancelled: Bool {
        cancelled.load(ordering: .relaxed) || interruption?.isPastGrace(since: start) == true
    }

    func run() throws -> HTTPResponse {
        if isCancelled { throw CancellationError() }
        let curl = try CurlEasyHandle()
        try curl.set(CURLOPT_URL, request.url)
        try curl.set(CURLOPT_CONNECTTIMEOUT, request.timeouts.connect)
        try curl.set(CURLOPT_LOW_SPEED_LIMIT, 1)
        try curl.set(CURLOPT_LOW_SPEED_TIME, request.timeouts.stall)
        try curl.set(CURLOPT_FOLLOWLOCATION, 0)
        if let caBundle = request.caBundle { try curl.set(CURLOPT_CAINFO, caBundle) }
        if let signing = request.signing {
            try curl.set(CURLOPT_AWS_SIGV4, signing.provider)
            try curl.set(CURLOPT_USERNAME, signing.accessKey)
            try curl.set(CURLOPT_PASSWORD, signing.secretKey)
        }
        switch request.method {
        case "GET": break
        case "HEAD": try curl.set(CURLOPT_NOBODY, 1)
        default: try curl.set(CURLOPT_CUSTOMREQUEST, request.method)
        }
        if let length = request.body?.readableBytes ?? request.bodyFile?.size {
            try curl.set(CURLOPT_UPLOAD, 1)
            try curl.set(CURLOPT_INFILESIZE_LARGE, offset: Int64(length))
            try curl.set(CURLOPT_READFUNCTION, callback: readCallback)
        } else if request.method == "POST" || request.method == "PUT" {
            try curl.set(CURLOPT_UPLOAD, 1)
            try curl.set(CURLOPT_INFILESIZE_LARGE, offset: 0)
            try curl.set(CURLOPT_READFUNCTION, callback: readCallback)
        }
        if let range = request.range { try curl.set(CURLOPT_RANGE, range) }
        try curl.setHeaders(request.headers)
        let this = Unmanaged.passUnretained(self).toOpaque()
        try curl.set(CURLOPT_READDATA, pointer: this)
        try curl.set(CURLOPT_WRITEFUNCTION, callback: writeCallback)
        try curl.set(CURLOPT_WRITEDATA, pointer: this)
        try curl.set(CURLOPT_HEADERFUNCTION, callback: headerCallback)
        try curl.set(CURLOPT_HEADERDATA, pointer: this)
        try curl.set(CURLOPT_NOPROGRESS, 0)
        try curl.set(CURLOPT_XFERINFOFUNCTION, progress: progressCallback)
        try curl.set(CURLOPT_XFERINFODATA, pointer: this)
        do {
            try curl.perform()
            flushStream()
        } catch {
            flushStream()
            if let streamError { throw streamError }
            if isCancelled { throw CancellationError() }
            if overflowed { throw HTTPBodyTooLarge(limit: request.responseLimit) }
            throw PartialTransfer(cause: error, received: response, delivered: delivered)
        }
        if let streamError { throw streamError }
        return HTTPResponse(status: curl.responseCode, headers: headers, body: response, delivered: delivered)
    }

    /// Whether the body goes to the stream: a stream was given and the status says this is the
    /// body asked for (206 for a range; an error's body is kept for its message instead).
    var isStreaming: Bool {
        request.responseStream != nil && (status == 206 || (status == 200 && request.range == nil))
    }

    /// Appends body bytes to the stream, handing on full chunks. `false` stops the transfer.
    func stream(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let (_, chunkSize) = request.responseStream, streamError == nil else { return false }
        pending.writeBytes(bytes)
        if pending.readableBytes >= chunkSize { flushStream() }
        return streamError == nil
    }

    func flushStream() {
        guard let (source, chunkSize) = request.responseStream, streamError == nil, pending.readableBytes > 0 else {
            return
        }
        let chunk = pending
        pending = ByteBufferAllocator().buffer(capacity: chunkSize)
        do {
            try source.writeBlocking(chunk)
            delivered += chunk.readableBytes
        } catch {
            streamError = error
        }
    }
}

/// A transfer that failed after receiving `received` (or delivering `delivered` bytes to its
/// stream), which a ranged download resumes from.
package struct PartialTransfer: Error, Sendable, CustomStringConvertible {
    package var cause: CurlError
    package var received: ByteBuffer
    package var delivered = 0
    package var description: String { cause.description }
}

struct HTTPBodyTooLarge: Error, Sendable, CustomStringConvertible {
    var limit: Int
    var description: String { "the response was larger than \(limit) bytes" }
}

private func context(_ pointer: UnsafeMutableRawPointer?) -> TransferContext {
    Unmanaged<TransferContext>.fromOpaque(pointer!).takeUnretainedValue()
}

private let writeCallback: CPGCloneCurl_data_callback = { data, size, count, pointer in
    let transfer = context(pointer)
    let length = size * count
    if transfer.isStreaming {
        return transfer.stream(UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
    }
    guard transfer.response.readableBytes + length <= transfer.request.responseLimit else {
        transfer.overflowed = true
        return 0
    }
    transfer.response.writeBytes(UnsafeRawBufferPointer(start: data, count: length))
    return length
}

private let readCallback: CPGCloneCurl_data_callback = { data, size, count, pointer in
    let transfer = context(pointer)
    if let file = transfer.request.bodyFile, let data {
        let length = min(size * count, file.size - transfer.uploadOffset)
        guard length > 0 else { return 0 }
        let read = pread(file.descriptor, data, length, off_t(transfer.uploadOffset))
        guard read > 0 else { return Int(CURL_READFUNC_ABORT) }
        transfer.uploadOffset += read
        return read
    }
    guard let body = transfer.request.body, let data else { return 0 }
    let length = min(size * count, body.readableBytes - transfer.uploadOffset)
    guard length > 0 else { return 0 }
    body.withUnsafeReadableBytes { bytes in
        UnsafeMutableRawPointer(data).copyMemory(from: bytes.baseAddress! + transfer.uploadOffset, byteCount: length)
    }
    transfer.uploadOffset += length
    return length
}

private let headerCallback: CPGCloneCurl_data_callback = { data, size, count, pointer in
    let transfer = context(pointer)
    let length = size * count
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    if line.hasPrefix("HTTP/") {
        // A new response (after 100 Continue): forget the interim one's headers.
        transfer.headers.removeAll()
        transfer.status = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].trimmingWhitespace()
        transfer.headers[name] = value
    }
    return length
}

private let progressCallback: CPGCloneCurl_progress_callback = { pointer, _, _, _, _ in
    context(pointer).isCancelled ? 1 : 0
}
