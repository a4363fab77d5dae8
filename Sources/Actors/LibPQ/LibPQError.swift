/// An error from libpq: a failed connection or statement, with the fields the server sent
/// (SQLSTATE, DETAIL, HINT, CONTEXT) and the statement that failed, as psql shows them.
package struct LibPQError: Error, Sendable, CustomStringConvertible {
    /// Five-character SQLSTATE (`42P04`, `55006`…), `nil` for client-side failures.
    package var sqlState: String?
    /// The primary message, folded into one line (libpq's messages carry no password).
    package var message: String
    /// The server's DETAIL, HINT and CONTEXT fields, each folded into one line.
    package var detail: String?
    package var hint: String?
    package var context: String?
    /// The statement that failed (pgclone's own SQL: names quoted, no secrets).
    package var statement: String?
    /// The connection is gone (the server ended the session, restarted, or the network failed):
    /// nothing more can be sent on it.
    package var connectionLost = false
    /// Set when no connection could be made: which database it was to, and why.
    package var connectionFailure: ConnectionFailure?

    package init(
        sqlState: String?,
        message: String,
        detail: String? = nil,
        hint: String? = nil,
        context: String? = nil,
        statement: String? = nil,
        connectionLost: Bool = false
    ) {
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
        self.context = context
        self.statement = statement
        self.connectionLost = connectionLost
    }

    package var description: String { message }

    /// `3D000`: the database does not exist.
    package var isInvalidCatalogName: Bool { sqlState == "3D000" }
    /// `55006`: the object is in use by other sessions.
    package var isObjectInUse: Bool { sqlState == "55006" }
    /// `57014`: the statement was cancelled (pgclone cancels its own on SIGINT and SIGTERM).
    package var isQueryCanceled: Bool { sqlState == "57014" }
    /// `42501`: insufficient privilege.
    package var isInsufficientPrivilege: Bool { sqlState == "42501" }
}

/// Why a connection could not be made, as far as libpq tells.
package struct ConnectionFailure: Sendable, Equatable {
    /// The database the connection was to (libpq's `PQdb`).
    package var database: String
    /// libpq's message, folded into one line: its lines are joined with `; `, and the server's
    /// DETAIL and HINT go to the error's own fields.
    package var reason: String
    /// The refusal is about this database, so that another database of the server may accept the
    /// same connection: it does not exist, the role lacks CONNECT on it, it does not accept
    /// connections or has no slot left, a pg_hba.conf line for it rejects the connection or asks
    /// for a method that failed, or the password came from a file that may hold another one for
    /// another database. `false` for what is about the server or the role, the same for every
    /// database: the server cannot be reached, a password given explicitly is wrong, the role may
    /// not log in or has no connection slot left, the server is starting or full.
    package var aboutDatabase: Bool

    /// libpq refused an option's value before connecting (`invalid sslmode value: "bogus"`,
    /// `invalid port number`, `invalid connection option`): the command line or configuration is
    /// wrong, which no retry or other database mends.
    package var isBadOption: Bool {
        // libpq's own words (fe-connect.c), wherever in the message (after "connection to server
        // at … failed: " for an option read per host).
        let phrases = [
            "invalid connection option \"", "\" for connection option \"", "invalid port number",
            "definition of service \"", "service file \"", "in connection info string", "invalid URI",
        ]
        return phrases.contains { reason.contains($0) } || reason.contains(#/invalid [a-z_]+ value: "/#)
    }
}

extension LibPQError {
    /// libpq's own message (`PQerrorMessage`) on one line: each of its messages, a line each, one
    /// after another with "; " between them; an indented line goes on the message before it, as
    /// a new sentence if it starts one ("\tThis probably means…").
    package static func oneLine(_ raw: String) -> String {
        var parts: [String] = []
        for line in raw.split(separator: "\n") {
            let text = String(line).singleLine
            guard !text.isEmpty else { continue }
            if line.first?.isWhitespace == true, let last = parts.popLast() {
                let sentence = text.first?.isUppercase == true && !(last.last.map { ".!?:".contains($0) } ?? true)
                parts.append(last + (sentence ? ". " : " ") + text)
            } else {
                parts.append(text)
            }
        }
        return parts.joined(separator: "; ")
    }

    /// The error of a connection to `database` that could not be made: `raw` is libpq's message
    /// (`PQerrorMessage`), `usedPassword` whether the server asked for a password
    /// (`PQconnectionUsedPassword`), `explicitPassword` whether one was given in the connection
    /// parameters, `PGPASSWORD` or a service file (rather than found in the password file, whose
    /// lines may differ by database).
    package static func connectionFailed(
        _ raw: String,
        database: String,
        usedPassword: Bool,
        explicitPassword: Bool
    ) -> LibPQError {
        var reason: [String] = []
        var detail: [String] = []
        var hint: [String] = []
        // Where an indented line (libpq's "\tIs the server running…") belongs.
        var current = 0
        for line in raw.split(separator: "\n") {
            let text = String(line).singleLine
            guard !text.isEmpty else { continue }
            if line.hasPrefix("DETAIL:  ") {
                detail.append(String(text.dropFirst("DETAIL: ".count)))
                current = 1
            } else if line.hasPrefix("HINT:  ") {
                hint.append(String(text.dropFirst("HINT: ".count)))
                current = 2
            } else if line.first?.isWhitespace == true && current != 0 {
                if current == 1 { detail.append(text) } else { hint.append(text) }
            } else {
                reason.append(text)
                if line.first?.isWhitespace != true { current = 0 }
            }
        }
        let failure = ConnectionFailure(
            database: database,
            reason: reason.isEmpty ? "libpq gave no reason" : reason.joined(separator: "; "),
            aboutDatabase: refusalIsAboutDatabase(
                raw,
                database: database,
                usedPassword: usedPassword,
                explicitPassword: explicitPassword
            )
        )
        var error = LibPQError(
            sqlState: raw.contains("database \"\(database)\" does not exist") ? "3D000" : nil,
            message: "cannot connect to database \"\(database)\": \(failure.reason)",
            detail: detail.isEmpty ? nil : detail.joined(separator: " "),
            hint: hint.isEmpty ? nil : hint.joined(separator: " ")
        )
        error.connectionFailure = failure
        return error
    }

    /// Whether a failed connection's refusal is about its database (``ConnectionFailure/aboutDatabase``).
    ///
    /// libpq gives no SQLSTATE for a failed connection, only its message, in which the server's
    /// part comes as `SEVERITY:  text` (two spaces). Matched in English (the server's own
    /// messages, PostgreSQL 15 to 18); in another language, a refusal naming the database in
    /// quotes is about it, and an unrecognised refusal from the server counts as about the
    /// database unless a password given explicitly was used, so that it is passed over as createdb
    /// passes over any failure of `postgres`.
    static func refusalIsAboutDatabase(
        _ raw: String,
        database: String,
        usedPassword: Bool,
        explicitPassword: Bool
    ) -> Bool {
        // Does not exist, no CONNECT privilege, not accepting connections, too many connections
        // for it, pg_hba.conf rejects or has no entry for it: the server names the database.
        if raw.contains("database \"\(database)\"") { return true }
        let serverWide = [
            "sorry, too many clients already", "remaining connection slots are reserved",
            "too many connections for role",
            "the database system is ", "is not permitted to log in", "FATAL:  role \"",
        ]
        if serverWide.contains(where: raw.contains) { return false }
        // In another language, the database named in its quotes (»postgres«, « postgres »): the
        // server checks it after the password, which such a refusal came with, accepted.
        let quotes = [
            ("\"", "\""), ("»", "«"), ("«", "»"), ("„", "“"), ("“", "”"), ("'", "'"), ("「", "」"),
        ]
        for (open, close) in quotes
        where raw.contains(open + database + close) || raw.contains(open + " " + database + " " + close)
            || raw.contains(open + "\u{A0}" + database + "\u{A0}" + close)
        {
            return true
        }
        // A password given explicitly is the same for every database; one from the password file
        // (or none found there) may differ by database.
        if usedPassword { return !explicitPassword }
        // Nothing from the server: it could not be reached, or TLS failed.
        guard raw.contains(":  ") else { return false }
        // Another refusal by the server, such as a pg_hba.conf line for this database with a method
        // that failed (peer, ident, cert) or a library the database's settings load.
        return true
    }
}
