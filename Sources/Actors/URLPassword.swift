/// Where a URL keeps a password: its user information (`scheme://user:password@host/…`).
/// pgclone never shows one; messages go through these.
package enum URLPassword {
    /// The range of the password in `url`'s user information, if it has a non-empty one.
    static func range(in url: String) -> Range<String.Index>? {
        guard let scheme = url.firstRange(of: "://") else { return nil }
        let authority = url[scheme.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") else {
            return nil
        }
        let password = authority.index(after: colon)..<at
        return password.isEmpty ? nil : password
    }

    /// A name that says its value is secret, `=` (with blanks around it in a connection string),
    /// and the value: quoted, or up to a blank or quote.
    nonisolated(unsafe) private static let secretAssignment =
        #/
        (?<name> [A-Za-z0-9_.-]* (?i: password | passwd | secret | token | credential | key ) [A-Za-z0-9_.-]* )
        \s* = \s* (?: '[^']*' | "[^"]*" | [^\s'"]+ )
        /#

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

    /// `text` (a hook's command, say) with the password of every URL in it, and the value of every
    /// assignment whose name says it is a secret, written `****`: a connection string's
    /// `password=`, an environment variable's `PGPASSWORD=` or `AWS_SECRET_ACCESS_KEY=`, an
    /// option's `--api-token=` (any name holding password, passwd, secret, token, credential or
    /// key, in any case; `AWS_ACCESS_KEY_ID=` too, which is harmless).
    package static func redactingAll(in text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let scheme = rest.firstRange(of: "://") {
            // The URL runs to the next blank or quote.
            let end =
                rest[scheme.upperBound...].firstIndex { $0.isWhitespace || $0 == "'" || $0 == "\"" } ?? rest.endIndex
            let url = String(rest[rest.startIndex..<end])
            result += redacted(url)
            rest = rest[end...]
        }
        result += rest
        return result.replacing(secretAssignment) { "\($0.output.name)=****" }
    }
}
