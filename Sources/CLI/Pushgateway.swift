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
        request.timeouts = .init(connect: 3, stall: 5)
        // A gateway that takes connections and never answers holds the job no longer than this,
        // at its start and at its end, interrupted or not.
        let deadline = 5
        let prepared = request
        let answer = try await withThrowingTaskGroup(of: HTTPResponse?.self) { group in
            group.addTask {
                do {
                    return try await HTTPTransfer.perform(prepared)
                } catch let error as PartialTransfer {
                    throw PGCloneError(.storageFailed, "cannot reach the Pushgateway: \(error)")
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(deadline))
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        guard let response = answer else {
            throw PGCloneError(.storageFailed, "the Pushgateway did not answer within \(deadline) s")
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
