/// An error from libpq: a failed connection or statement, with the server's SQLSTATE when it sent one.
package struct LibPQError: Error, Sendable, CustomStringConvertible {
    /// Five-character SQLSTATE (`42P04`, `55006`…), `nil` for client-side failures.
    package var sqlState: String?
    /// libpq's message folded into one line (it carries no password).
    package var message: String

    package var description: String { message }

    /// `3D000`: the database does not exist.
    package var isInvalidCatalogName: Bool { sqlState == "3D000" }
    /// `55006`: the object is in use by other sessions.
    package var isObjectInUse: Bool { sqlState == "55006" }
}
