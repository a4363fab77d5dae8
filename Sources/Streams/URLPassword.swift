/// Where a URL keeps a password: its user information (`scheme://user:password@host/…`).
/// pgclone never shows one; messages go through these.
package enum URLPassword {
    /// The range of the password in `url`'s user information, if it has a non-empty one.
    package static func range(in url: String) -> Range<String.Index>? {
        guard let scheme = url.firstRange(of: "://") else { return nil }
        let authority = url[scheme.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") else {
            return nil
        }
        let password = authority.index(after: colon)..<at
        return password.isEmpty ? nil : password
    }

    /// An assignment, `name=value` (blanks around `=` in a connection string): its value a quoted
    /// string (a backslash escapes within quotes, as in a connection string), then escaped or
    /// plain characters and quoted strings without blanks (`ab'cd'`, as the shell joins them; one
    /// with blanks after a value is more likely the end of a string it stands in), up to a blank
    /// or one of the shell's `;&|<>()` and backquote. A blank after `=` and then another
    /// assignment is an empty value (`PGPASSWORD= PGPASSFILE=/x`, as `env` or `echo` prints it),
    /// not a value to mask.
    nonisolated(unsafe) private static let assignment =
        #/
        (?<name> [A-Za-z_][A-Za-z0-9_.-]* | "[A-Za-z_][A-Za-z0-9_.-]*" )
        (?<separator> \s* = (?: \s+ (?! [A-Za-z_][A-Za-z0-9_.-]*= ) )? )
        (?<value>
          (?: '(?:[^'\\]|\\.)*' | "(?:[^"\\]|\\.)*" | \\. | [^\s'"\\;&|<>()`] )
          (?: '(?:[^'\\\s]|\\\S)*' | "(?:[^"\\\s]|\\\S)*" | \\. | [^\s'"\\;&|<>()`] )*
        )
        /#

    /// An option given its value in the next word (`--token abc`, not `--token -v`), or an HTTP
    /// credential (`Authorization: Bearer abc`).
    nonisolated(unsafe) private static let separateValue =
        #/
        (?<name> --[A-Za-z0-9_-]+ | (?i:bearer|basic) ) \s+
        (?<value>
          (?: '(?:[^'\\]|\\.)*' | "(?:[^"\\]|\\.)*" | \\. | [^\s'"\\;&|<>()`-] )
          (?: '(?:[^'\\\s]|\\\S)*' | "(?:[^"\\\s]|\\\S)*" | \\. | [^\s'"\\;&|<>()`] )*
        )
        /#

    /// An HTTP `Authorization` (or `Proxy-Authorization`) header's credentials, after its scheme
    /// if it has one (`Token x`, as well as `Bearer` and `Basic`), as a header, in JSON or a
    /// Python dict (`'Authorization': 'Token x'`) or Go's map (`Authorization:[Token x]`).
    nonisolated(unsafe) private static let authorizationHeader =
        #/
        (?<header>
          (?i:\b(?:proxy-)?authorization) ["']? [\ \t]* [:=] [\ \t]* [\["']?
          (?: [A-Za-z][A-Za-z0-9_-]* [\ \t]+ )?
        )
        [^\s'"\],}]+
        /#

    /// A name and the colon after it, as YAML, JSON, Python and log lines write one: `password: `,
    /// `"token": `, `'secret':'` (a blank after the colon, as YAML has it, or a quote), or the
    /// colon alone before the value (`password:x`, `tight`: a secret's name only, at the start of
    /// a word: `https://x/token:abc`, `Foo::Secret` and `12:30` are no such thing).
    nonisolated(unsafe) private static let colonName =
        #/
        (?<name> "[A-Za-z_][A-Za-z0-9_.-]*" | '[A-Za-z_][A-Za-z0-9_.-]*' | :?[A-Za-z_][A-Za-z0-9_.-]* )
        [\ \t]* (?: : (?: [\ \t]+ | (?= ["'] ) | (?<tight> (?= [^\s:/] ) ) ) | => [\ \t]* )
        /#

    /// A password in SQL, as a server log or psql echoes a statement: `PASSWORD 'x'`
    /// (`CREATE ROLE`, `ALTER ROLE`), `''` being one quote.
    nonisolated(unsafe) private static let sqlPassword =
        #/(?i:\bpassword)\s+(?:'(?:[^']|'')*'|[Ee]'(?:[^'\\]|\\.|'')*')/#

    /// Whether `value` names a secret rather than holds one: a shell or template reference
    /// (`$PGPASSWORD`, `${TOKEN}`, `$(cat file)`), not a value that starts with `$` (`$2b$12$…`).
    package static func isReference(_ value: Substring) -> Bool {
        // A lone `$`: the shell's syntax cut it short (`$(cat file)` ends a plain value at `(`).
        value == "$" || value.wholeMatch(of: reference) != nil
    }

    /// Whether `value` says there is no secret, or that it is hidden already: `null`, `~`,
    /// `[FILTERED]` (Rails), `<redacted>`… (shown, rather than hide that a value is empty).
    package static func isNoValue(_ value: Substring) -> Bool {
        let lowercased = value.lowercased()
        return ["null", "~", "none", "nil", "[filtered]", "[redacted]", "<redacted>", "***", "(sensitive value)"]
            .contains(lowercased) || lowercased.allSatisfy { $0 == "*" }
    }

    /// A shell or template reference: `$NAME`, `${NAME}`, `$(command)`.
    nonisolated(unsafe) private static let reference = #/\$(?:[A-Za-z_][A-Za-z0-9_]*\b|\{[^}]*\}|\([^)]*\))/#

    /// A quoted value after such a colon, to its closing quote.
    nonisolated(unsafe) private static let quotedValue = #/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.|'')*'/#

    /// Where an unquoted value after such a colon ends: at a comment (` #`), at the next name and
    /// colon after a `,` or `;`, or at what closes it at the end of the line (`},`); else at the
    /// end of the line (a YAML value may have blanks: `passphrase: correct horse`).
    nonisolated(unsafe) private static let plainValueEnd =
        #/
        [\ \t]+ \#
        | [,;] [\ \t]* (?: "[^"]*" | '[^']*' | [A-Za-z_][A-Za-z0-9_.-]* ) [\ \t]* :
        | [\ \t]* [}\]),;]* [\ \t]* $
        /#

    /// Whether `name` (an environment variable, a connection string keyword, an option) says its
    /// value is secret: a word of it (between `_`, `-` and `.`) is password, secret, token and the
    /// like, or it ends in key after api, access, private, secret, auth or signing.
    package static func namesSecret(_ name: some StringProtocol) -> Bool {
        let words = separatingCamelCase(name).lowercased().split { $0 == "_" || $0 == "-" || $0 == "." }
        // The working directory, and names of what describes a secret rather than holds one:
        // where it is (`PGPASSWORD_FILE`), how it is made or checked (`password_encryption`,
        // `PASSWORD_MIN_LENGTH`).
        if words == ["pwd"] || words == ["oldpwd"] { return false }
        let describing: Set<Substring> = [
            "file", "path", "dir", "directory", "encryption", "length", "policy", "min", "max", "required", "expiry",
            "expires", "enabled", "type", "prompt", "url", "uri", "endpoint", "host", "port", "name", "ttl", "timeout",
            "count", "changed", "at", "updated", "created", "hint", "reset", "version", "used", "arn",
        ]
        if words.count >= 2, let last = words.last, describing.contains(last) { return false }
        let secretWords: Set<Substring> = [
            "password", "passwd", "pwd", "pass", "secret", "token", "credential", "credentials", "pat", "apikey",
            "passphrase", "bearer", "basic", "passwords", "secrets", "tokens",
        ]
        if words.contains(where: secretWords.contains) { return true }
        if words.contains(where: { $0.hasSuffix("password") || $0.hasSuffix("secret") || $0.hasSuffix("token") }) {
            return true
        }
        let keyed: Set<Substring> = ["api", "access", "private", "secret", "auth", "signing", "encryption", "master"]
        return words.count >= 2 && words.last == "key" && keyed.contains(words[words.count - 2])
    }

    /// `name` with a `_` where a camelCase word starts (`SecretAccessKey`: `Secret_Access_Key`,
    /// `DBPassword`: `DB_Password`), as AWS's and JavaScript's names are written.
    private static func separatingCamelCase(_ name: some StringProtocol) -> String {
        let characters = Array(name)
        var separated = ""
        for (index, character) in characters.enumerated() {
            if index > 0, character.isUppercase {
                let previous = characters[index - 1]
                let nextIsLowercase = index + 1 < characters.count && characters[index + 1].isLowercase
                if previous.isLowercase || previous.isNumber || previous.isUppercase && nextIsLowercase {
                    separated.append("_")
                }
            }
            separated.append(character)
        }
        return separated
    }

    /// The ranges of `url`'s secrets: its password, and the values of query parameters whose names
    /// say they are secret (``namesSecret(_:)``: `?token=…`, `&api_key=…`; and a URL's own: a
    /// signature, `auth`, `key`), last first.
    static func secretRanges(in url: String) -> [Range<String.Index>] {
        var ranges = range(in: url).map { [$0] } ?? []
        if let query = url.firstIndex(of: "?") {
            let end = url[query...].firstIndex(of: "#") ?? url.endIndex
            for pair in url[url.index(after: query)..<end].split(separator: "&") {
                guard let equals = pair.firstIndex(of: "="),
                    namesSecret(pair[..<equals]) || Self.secretQueryNames.contains(pair[..<equals].lowercased())
                else { continue }
                let value = url.index(after: equals)..<pair.endIndex
                if !value.isEmpty { ranges.append(value) }
            }
        }
        return ranges.sorted { $0.lowerBound > $1.lowerBound }
    }

    /// Query parameters that carry a secret in URLs whatever ``namesSecret(_:)`` says of them.
    private static let secretQueryNames: Set<String> = [
        "sig", "signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token", "auth", "key", "code",
    ]

    /// `url` with its secrets written `****` (`http://user:****@host/?token=****`).
    package static func redacted(_ url: String) -> String {
        var redacted = url
        for secret in secretRanges(in: url) { redacted.replaceSubrange(secret, with: "****") }
        return redacted
    }

    /// `text` with `url`'s secrets (``redacted(_:)``), if it has any, masked wherever they appear.
    package static func redacting(_ text: String, secretsOf url: String) -> String {
        let secrets = secretRanges(in: url)
        guard !secrets.isEmpty else { return text }
        return secrets.reduce(text.replacing(url, with: redacted(url))) { $0.replacing(url[$1], with: "****") }
    }

    /// `text` (a hook's command or a line of its output) with the password of every URL in it,
    /// and every value whose name says it is secret (``namesSecret(_:)``) written `****`: a
    /// connection string's `password=`, an environment variable's `PGPASSWORD=` or
    /// `AWS_SECRET_ACCESS_KEY=`, an option's `--api-token=` or `--token abc`, `Bearer abc`. A value
    /// that is a reference (`$PGPASSWORD`, `$(cat file)`) is left as it is.
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
        // A value that is a reference ($PGPASSWORD, $(cat file)) shows no secret.
        result = result.replacing(assignment) { match in
            let value = match.output.value
            guard namesSecret(match.output.name.filter { $0 != "\"" }), !isReference(value), !isNoValue(value) else {
                return String(match.output.0)
            }
            // A comma after it is the list's (`password=x, user=y`), not the value's.
            return "\(match.output.name)\(match.output.separator)****\(value.hasSuffix(",") ? "," : "")"
        }
        result = result.replacing(separateValue) { match in
            guard namesSecret(match.output.name.drop { $0 == "-" }), !isReference(match.output.value) else {
                return String(match.output.0)
            }
            return "\(match.output.name) ****"
        }
        result = result.replacing(authorizationHeader) { match in "\(match.output.header)****" }
        result = result.replacing(sqlPassword) { match in
            match.output.prefix { $0 != "'" }.dropLast(match.output.prefix { $0 != "'" }.hasSuffix("E") ? 1 : 0)
                + "'****'"
        }
        return result.split(separator: "\n", omittingEmptySubsequences: false).map(redactingColonValues)
            .joined(separator: "\n")
    }

    /// `line` with the value after every `name: ` whose name says it is secret written `****`
    /// (`password: ****`, `"token": "****"`). Each name is looked at (`INFO: password: x` masks
    /// `x`); a value that is a reference (`$X`) is left as it is.
    private static func redactingColonValues(in line: Substring) -> String {
        var result = ""
        var rest = line
        while let match = rest.firstMatch(of: colonName) {
            result += rest[..<match.range.upperBound]
            rest = rest[match.range.upperBound...]
            let name = match.output.name.filter { $0 != "\"" && $0 != "'" && $0 != ":" }
            // Go's and TAP's test results (`--- PASS: TestX`) name no secret.
            guard namesSecret(name), name != "PASS" else { continue }
            if match.output.tight != nil {
                // Without a blank, only a name that starts a word (not a path's `/token:x`).
                let before =
                    match.range.lowerBound > line.startIndex ? line[line.index(before: match.range.lowerBound)] : " "
                guard before.isWhitespace || "{[(,;".contains(before) else { continue }
            }
            if let quoted = rest.prefixMatch(of: quotedValue) {
                // Quoted, it is output (JSON, YAML), not a shell's reference: `"$ecret"` is one.
                let value = quoted.output.dropFirst().dropLast()
                guard !value.isEmpty, value != "****", !isNoValue(value) else { continue }
                let quote = quoted.output.prefix(1)
                result += quote + "****" + quote
                rest = rest[quoted.range.upperBound...]
            } else {
                var end = rest.firstMatch(of: plainValueEnd)?.range.lowerBound ?? rest.endIndex
                // Written without a blank after the colon (`token:abc user=bob`), it is one word.
                if match.output.tight != nil, let blank = rest[..<end].firstIndex(where: \.isWhitespace) {
                    end = blank
                }
                let value = rest[..<end]
                // A reference that is a word of its own (`${TOKEN}`, `$PW more`) is shown; one that
                // only starts the value (`$Passw0rd!`) is none.
                if let reference = rest.prefixMatch(of: reference),
                    reference.range.upperBound >= end || rest[reference.range.upperBound...].first?.isWhitespace == true
                {
                    continue
                }
                guard !value.isEmpty, value != "****", !isNoValue(value) else { continue }
                result += "****"
                rest = rest[end...]
            }
        }
        return result + rest
    }

    /// `text` with every occurrence of the values in `secrets` (a password pgclone passes on, a
    /// secret of its environment) as `****`, as they are and as a child would print them in a URL
    /// (percent-encoded) or in JSON (escaped): a child that prints its environment, or a command
    /// that echoes `$PGPASSWORD`, shows none. Run before any other redaction, which could cut a
    /// value short of matching. Values shorter than 4 characters are left alone (they would mask
    /// the rest of the text, and hide little).
    package static func masking(_ secrets: [String], in text: String) -> String {
        var forms: Set<String> = []
        for secret in secrets where secret.count >= 4 {
            forms.insert(secret)
            forms.insert(percentEncode(secret))
            forms.insert(jsonEscaped(secret, asciiOnly: true))
            forms.insert(jsonEscaped(secret, asciiOnly: false))
        }
        var text = text
        for form in forms.sorted(by: { $0.count > $1.count }) {
            text = text.replacing(form, with: "****")
        }
        return text
    }

    /// Whether `line` still shows one of `secrets` (4 characters or more) in a form
    /// ``masking(_:in:)`` does not mask: percent-encoded in any case or with `+` for spaces, shell-
    /// or SQL-quoted, backslash-escaped (Python's `repr`). Such a line is shown as a whole `****`.
    package static func stillShows(_ secrets: [String], in line: String) -> Bool {
        let secrets = secrets.filter { $0.count >= 4 }
        guard !secrets.isEmpty else { return false }
        let views = [
            line, percentDecoded(line, plusIsSpace: false), percentDecoded(line, plusIsSpace: true),
            line.replacing("'\"'\"'", with: "'").replacing("'\\''", with: "'"),
            line.replacing("''", with: "'"), line.replacing("\"\"", with: "\""),
            line.replacing("\\\\", with: "\u{0}").replacing("\\'", with: "'").replacing("\\\"", with: "\"")
                .replacing("\u{0}", with: "\\"),
        ]
        return views.contains { view in secrets.contains { view.contains($0) } }
    }

    /// `text` with its `%XX` escapes decoded (either case), and `+` as a space if `plusIsSpace`.
    private static func percentDecoded(_ text: String, plusIsSpace: Bool) -> String {
        var bytes: [UInt8] = []
        var input = Array(text.utf8)[...]
        while let byte = input.popFirst() {
            if byte == UInt8(ascii: "%"), input.count >= 2,
                let value = UInt8(String(decoding: input.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                input = input.dropFirst(2)
            } else {
                bytes.append(plusIsSpace && byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The most bytes a form of `secrets` that ``masking(_:in:)`` masks can take.
    package static func longestForm(of secrets: [String]) -> Int {
        secrets.map { $0.utf8.count * 6 }.max() ?? 0
    }

    /// `text` as in a JSON string, without its quotes; with `asciiOnly`, as Python's `json.dumps`
    /// writes it (`\u00e4`).
    private static func jsonEscaped(_ text: String, asciiOnly: Bool) -> String {
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\t": escaped += "\\t"
            case _ where scalar.value < 0x20 || (asciiOnly && scalar.value > 0x7E):
                for unit in String(scalar).utf16 {
                    let hex = String(unit, radix: 16)
                    escaped += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// The values of the variables in `environment` whose names say they are secret
    /// (``namesSecret(_:)``: `PGPASSWORD`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`…).
    package static func secretValues(of environment: [String: String?]) -> [String] {
        environment.compactMap { name, value in namesSecret(name) ? value : nil }.filter { !$0.isEmpty }
    }
}
