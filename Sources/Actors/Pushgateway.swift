import Foundation
import NIOCore

/// Pushes to a Prometheus Pushgateway: `POST /metrics/job/pgclone/<label>@base64/<value>…` (POST
/// replaces only the metrics it carries; values base64url-encoded, as the gateway documents, so
/// any database name works).
package enum Pushgateway {
    /// `url` with the password of its user information masked (`http://user:****@host/`), for
    /// messages: libcurl sends it as basic authentication, nothing else may show it.
    package static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        let authorityEnd = url[scheme.upperBound...].firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? url.endIndex
        guard let at = url[scheme.upperBound..<authorityEnd].lastIndex(of: "@") else { return url }
        let userinfo = url[scheme.upperBound..<at]
        let user = userinfo.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        return String(url[..<scheme.upperBound]) + user + ":****" + String(url[at...])
    }

    /// `text` with the URL's password, if it has one, masked wherever it appears.
    package static func redacting(_ text: String, secretsOf url: String) -> String {
        guard let scheme = url.range(of: "://") else { return text }
        let authorityEnd = url[scheme.upperBound...].firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? url.endIndex
        guard let at = url[scheme.upperBound..<authorityEnd].lastIndex(of: "@") else { return text }
        let parts = url[scheme.upperBound..<at].split(separator: ":", maxSplits: 1)
        guard parts.count == 2, !parts[1].isEmpty else { return text }
        return text.replacingOccurrences(of: url, with: redacted(url)).replacingOccurrences(of: String(parts[1]), with: "****")
    }

    package static func push(_ exposition: [UInt8], to base: String, grouping: [(String, String)]) async throws {
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
            throw PGCloneError(.storageFailed, "the Pushgateway answered HTTP \(response.status)\(message.isEmpty ? "" : ": \(message)")")
        }
    }
}
