import Foundation
import PGCloneStreams

/// The statements pg_dump writes for owners and privileges, read as far as a restore needs: which
/// role an `ALTER … OWNER TO` names, the statements of an ACL entry one by one, and which role a
/// refusal is about. pg_dump writes them in one form (`pg_dump/dumputils.c`, `buildACLCommands`),
/// identifiers quoted as `fmtId` quotes them.
package enum PrivilegeStatements {
    /// Why a role's owner or privilege could not be given here.
    package enum Refusal: Sendable, Hashable, Comparable {
        /// The role does not exist on this server.
        case missingRole
        /// The restoring role may not act as it (not a member; PostgreSQL 16 and later: not one
        /// with the SET option).
        case notAMember
        /// Another refusal, in the server's words.
        case other(String)
    }

    /// The role `statement` (`ALTER TABLE public.t OWNER TO app;`) gives an object to, or `nil` if
    /// it is no owner change.
    package static func newOwner(in statement: String) -> String? {
        guard statement.hasPrefix("ALTER "), let range = statement.range(of: " OWNER TO ", options: .backwards) else {
            return nil
        }
        var role = Substring(statement[range.upperBound...])
        while role.last == ";" || role.last?.isWhitespace == true { role.removeLast() }
        return identifier(role)
    }

    /// The role `statement` (`SET SESSION AUTHORIZATION lead;`, which pg_dump writes before the
    /// grants a role other than the owner made) names, as an identifier or a string literal; `nil`
    /// for another statement.
    package static func sessionAuthorization(in statement: String) -> String? {
        let prefix = "SET SESSION AUTHORIZATION "
        guard statement.hasPrefix(prefix) else { return nil }
        var role = Substring(statement.dropFirst(prefix.count))
        while role.last == ";" || role.last?.isWhitespace == true { role.removeLast() }
        if role.first == "'" {
            guard role.count >= 2, role.last == "'" else { return nil }
            return role.dropFirst().dropLast().replacingOccurrences(of: "''", with: "'")
        }
        return identifier(role)
    }

    /// An identifier as `fmtId` writes it: bare, or in double quotes with `""` for `"`.
    static func identifier(_ text: Substring) -> String? {
        guard let first = text.first else { return nil }
        guard first == "\"" else {
            return text.contains(where: { $0.isWhitespace || $0 == "\"" }) ? nil : String(text)
        }
        guard text.count >= 2, text.last == "\"" else { return nil }
        return text.dropFirst().dropLast().replacingOccurrences(of: "\"\"", with: "\"")
    }

    /// Why an owner change failed with the server's `message`, or `nil` if the failure
    /// is not about who may own what (the object is missing, say).
    package static func ownerRefusal(_ message: String) -> Refusal? {
        if let named = refusedRole(in: message) { return named.refusal }
        for pattern in ["permission denied for schema ", "permission denied for database ", "must be owner of "]
        where message.hasPrefix(pattern) {
            return .other(message)
        }
        return nil
    }

    /// The role a refusal names (`role "x" does not exist`, `must be member of role "x"`,
    /// `must be able to SET ROLE "x"`), and what it is.
    package static func refusedRole(in message: String) -> (role: String, refusal: Refusal)? {
        let patterns: [(prefix: String, suffix: String, refusal: Refusal)] = [
            ("role \"", "\" does not exist", .missingRole),
            ("must be member of role \"", "\"", .notAMember),
            ("must be able to SET ROLE \"", "\"", .notAMember),
        ]
        for pattern in patterns where message.hasPrefix(pattern.prefix) && message.hasSuffix(pattern.suffix) {
            let role = message.dropFirst(pattern.prefix.count).dropLast(pattern.suffix.count)
            if role.count + pattern.prefix.count + pattern.suffix.count == message.count {
                return (String(role), pattern.refusal)
            }
        }
        return nil
    }

    /// The role `ALTER DEFAULT PRIVILEGES FOR ROLE r …` is about.
    package static func defaultPrivilegesRole(in statement: String) -> String? {
        guard statement.hasPrefix("ALTER DEFAULT PRIVILEGES FOR ROLE ") else { return nil }
        let rest = statement.dropFirst("ALTER DEFAULT PRIVILEGES FOR ROLE ".count)
        var end = rest.startIndex
        var quoted = false
        while end < rest.endIndex {
            let character = rest[end]
            if character == "\"" { quoted.toggle() } else if character == " " && !quoted { break }
            end = rest.index(after: end)
        }
        return identifier(rest[..<end])
    }

    /// The statements of an ACL entry's SQL, each without its `;`: split at every `;` outside
    /// double-quoted identifiers and single-quoted literals. `nil` if a quote is left open.
    package static func split(_ sql: String) -> [String]? {
        var statements: [String] = []
        var current = ""
        var quote: Character?
        for character in sql {
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == ";" {
                let statement = current.trimmingWhitespace()
                if !statement.isEmpty { statements.append(statement) }
                current = ""
                continue
            }
            current.append(character)
        }
        guard quote == nil else { return nil }
        let last = current.trimmingWhitespace()
        if !last.isEmpty { statements.append(last) }
        return statements
    }

    /// Whether `tocEntry` is a materialized view's data (its REFRESH), which reads what its owner
    /// may read: the privileges pg_restore has just given, or failed to.
    package static func isMaterializedViewData(_ tocEntry: String?) -> Bool {
        entryDescription(tocEntry)?.hasPrefix("MATERIALIZED VIEW DATA ") == true
    }

    /// `FUNCTION public.f(text)` of `REVOKE ALL ON FUNCTION public.f(text) FROM PUBLIC` (pg_dump's
    /// form: the object after ` ON `, up to its last ` FROM `), its schema unquoted, as
    /// pg_restore's "creating ACL" line names it (`FUNCTION My Schema.f(text)` of
    /// `FUNCTION "My Schema".f(text)`), so that both name an object alike.
    package static func revokedObject(in statement: String) -> String? {
        guard let on = statement.firstRange(of: " ON "), let from = statement.ranges(of: " FROM ").last,
            on.upperBound < from.lowerBound
        else { return nil }
        let object = statement[on.upperBound..<from.lowerBound]
        guard let kind = ChildStderr.aclKinds.first(where: { object.hasPrefix($0 + " ") }) else {
            return String(object)
        }
        let name = object.dropFirst(kind.count + 1)
        guard name.first == "\"" else { return String(object) }
        // A quoted schema: its text, `""` being one quote, up to the quote before the dot.
        var schema = ""
        var rest = name.dropFirst()
        while let quote = rest.firstIndex(of: "\"") {
            schema += rest[..<quote]
            rest = rest[rest.index(after: quote)...]
            if rest.first == "\"" {
                schema += "\""
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        guard rest.first == "." else { return String(object) }
        return kind + " " + schema + rest
    }

    /// Whether `tocEntry` (`from TOC entry 3350; 0 0 ACL TABLE t app`) is an ACL or default
    /// privileges entry, whose statements pg_restore runs as one.
    package static func isACLEntry(_ tocEntry: String?) -> Bool {
        guard let rest = entryDescription(tocEntry) else { return false }
        return rest.hasPrefix("ACL ") || rest.hasPrefix("DEFAULT ACL ")
    }

    /// `ACL TABLE t app` of `from TOC entry 3350; 0 0 ACL TABLE t app`.
    private static func entryDescription(_ tocEntry: String?) -> Substring? {
        guard let tocEntry, let semicolon = tocEntry.firstIndex(of: ";") else { return nil }
        // `; <table oid> <oid> <description> <name> <owner>`
        let fields = tocEntry[tocEntry.index(after: semicolon)...].split(separator: " ", maxSplits: 2)
        return fields.count == 3 ? fields[2] : nil
    }
}
