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
