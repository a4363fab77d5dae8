/// Where a URL keeps a password: its user information (`scheme://user:password@host/…`).
/// pgclone never shows one; messages go through these.
package enum URLPassword {
    /// The range of the password in `url`'s user information, if it has a non-empty one.
    static func range(in url: String) -> Range<String.Index>? {
        guard let scheme = url.firstRange(of: "://") else { return nil }
        let authority = url[scheme.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") else { return nil }
        let password = authority.index(after: colon)..<at
        return password.isEmpty ? nil : password
    }

    /// `url` with its password written `****` (`http://user:****@host/`).
    package static func redacted(_ url: String) -> String {
        guard let password = range(in: url) else { return url }
        var redacted = url
        redacted.replaceSubrange(password, with: "****")
        return redacted
    }

    /// `text` with `url`'s password, if it has one, masked wherever it appears.
    package static func redacting(_ text: String, secretsOf url: String) -> String {
        guard let password = range(in: url) else { return text }
        return text.replacing(url, with: redacted(url)).replacing(url[password], with: "****")
    }
}
