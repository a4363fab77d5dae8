/// An `http://` or `https://` URL's parts, read without Foundation's URL parser, whose first use
/// costs pgclone ~2.5 MiB of resident memory (measured with `/usr/bin/time -f %M`): enough to check
/// a custom endpoint's or a Pushgateway's URL before anything is sent to it.
package struct HTTPEndpoint: Sendable, Equatable {
    /// `http` or `https`, lowercased.
    package var scheme: String
    /// Whether the authority has user information (`user:password@`).
    package var hasUserInfo: Bool
    /// The host, IPv6 addresses with their brackets; may be empty.
    package var host: String
    /// The port, if the URL gives one (any number: checking its range is the caller's).
    package var port: Int?
    /// Whether a port is given that is not a number.
    package var hasInvalidPort: Bool
    /// Whether the URL has a query (`?…`) or a fragment (`#…`).
    package var hasQueryOrFragment: Bool

    /// The parts of `text`, or `nil` if it is not an `http://` or `https://` URL at all (no
    /// scheme, another scheme, or whitespace in it).
    package init?(_ text: String) {
        guard !text.contains(where: \.isWhitespace), let separator = text.firstRange(of: "://") else { return nil }
        let scheme = text[..<separator.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        self.scheme = scheme
        let rest = text[separator.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        hasQueryOrFragment = rest[authorityEnd...].contains { $0 == "?" || $0 == "#" }
        hasUserInfo = authority.contains("@")
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        // `[::1]:9000`: the port follows the bracket; `host:9000`: the last colon.
        let portStart: Substring.Index?
        if authority.hasPrefix("[") {
            let close = authority.firstIndex(of: "]")
            portStart = close.flatMap {
                authority[$0...].dropFirst().first == ":" ? authority.index($0, offsetBy: 1) : nil
            }
        } else {
            portStart = authority.lastIndex(of: ":")
        }
        if let portStart {
            let digits = authority[authority.index(after: portStart)...]
            host = String(authority[..<portStart])
            port = digits.isEmpty ? nil : Int(digits)
            hasInvalidPort = !digits.isEmpty && (Int(digits) == nil || digits.contains { !$0.isASCII || !$0.isNumber })
        } else {
            host = String(authority)
            port = nil
            hasInvalidPort = false
        }
    }
}
