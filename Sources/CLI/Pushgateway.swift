import Foundation
import NIOCore
import PGCloneActors
import PGCloneS3

/// Pushes to a Prometheus Pushgateway: `POST /metrics/job/pgclone/<label>@base64/<value>…` (POST
/// replaces only the metrics it carries; values base64url-encoded, as the gateway documents, so
/// any database name works).
enum Pushgateway {
    static func push(_ exposition: [UInt8], to base: String, grouping: [(String, String)]) async throws {
        var url = base
        while url.hasSuffix("/") { url.removeLast() }
        url += "/metrics/job/pgclone"
        for (name, value) in grouping {
            let encoded = Data(value.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_")
            url += "/\(name)@base64/\(encoded.isEmpty ? "=" : encoded)"
        }
        var request = HTTPRequest(method: "POST", url: url)
        request.headers = ["Content-Type: text/plain; version=0.0.4; charset=utf-8"]
        request.body = ByteBuffer(bytes: exposition)
        request.timeouts = .init(connect: 5, stall: 10)
        let response: HTTPResponse
        do {
            response = try await HTTPTransfer.perform(request)
        } catch let error as PartialTransfer {
            throw PGCloneError(.storageFailed, "cannot reach the Pushgateway: \(error)")
        }
        guard (200..<300).contains(response.status) else {
            let message = String(buffer: response.body).singleLine
            throw PGCloneError(
                .storageFailed,
                "the Pushgateway answered HTTP \(response.status)\(message.isEmpty ? "" : ": \(message)")"
            )
        }
    }
}
