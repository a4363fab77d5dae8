internal import CPGCloneLibPQ
import Glibc
import PGCloneStreams

/// One libpq connection, owned by an actor whose executor is its own dispatch queue: libpq's calls
/// block, and they must never block Swift's cooperative pool.
package actor PostgresConnection {
    private let executor = DispatchQueueExecutor(label: "pgclone.libpq")
    package nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    package nonisolated let settings: ConnectionSettings
    /// `PGconn *`; freed by ``close()`` or, as a last resort, `deinit`.
    private var handle: OpaquePointer?

    private init(settings: ConnectionSettings) {
        self.settings = settings
    }

    isolated deinit {
        if let handle { PQfinish(handle) }
    }

    /// Opens a connection.
    package static func connect(_ settings: ConnectionSettings) async throws -> PostgresConnection {
        let connection = PostgresConnection(settings: settings)
        try await connection.open()
        return connection
    }

    /// The database name libpq would connect to with `settings`: the explicit one, else
    /// `PGDATABASE` or the service file's, else the user name — resolved by libpq itself, with no
    /// round trip to the server.
    package static func resolveDatabaseName(_ settings: ConnectionSettings) async -> String? {
        await PostgresConnection(settings: settings).resolveDatabaseName()
    }

    private func resolveDatabaseName() -> String? {
        // PQconnectStartParams resolves every option (environment, service file, defaults) before
        // it starts the non-blocking connect, which is abandoned at once.
        let connection = withConnectionParameters(settings) { keywords, values in
            PQconnectStartParams(keywords, values, 0)
        }
        guard let connection else { return nil }
        defer { PQfinish(connection) }
        return PQdb(connection).map { String(cString: $0) }
    }

    private func open() throws {
        let connection = withConnectionParameters(settings) { keywords, values in
            PQconnectdbParams(keywords, values, 0)
        }
        guard let connection else {
            throw LibPQError(sqlState: nil, message: "out of memory allocating a connection")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(connection)).singleLine
            PQfinish(connection)
            // libpq gives no SQLSTATE for a failed connection; the server's message names the database.
            let missingDatabase = message.contains("FATAL: database \"") && message.contains("\" does not exist")
            throw LibPQError(sqlState: missingDatabase ? "3D000" : nil, message: message)
        }
        // libpq prints NOTICEs (such as DROP … IF EXISTS's "skipping") on stderr by default.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        handle = connection
    }

    /// Sets session parameters (`statement_timeout`, `lock_timeout`…) for this connection's own SQL.
    package func apply(_ settings: [(name: String, value: String)]) throws {
        for setting in settings {
            try query("SELECT set_config($1, $2, false)", [setting.name, setting.value])
        }
    }

    /// Closes the connection; idempotent.
    package func close() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    /// The database this connection is to (`PQdb`).
    package var databaseName: String {
        handle.flatMap { PQdb($0) }.map { String(cString: $0) } ?? ""
    }

    /// Where this connection went, as libpq resolved it: host (or socket directory), port, user.
    package var endpoint: (host: String, port: String, user: String) {
        func text(_ value: UnsafeMutablePointer<CChar>?) -> String { value.map { String(cString: $0) } ?? "" }
        guard let handle else { return ("", "", "") }
        return (text(PQhost(handle)), text(PQport(handle)), text(PQuser(handle)))
    }

    /// The server's version as an integer, e.g. 150018.
    package var serverVersion: Int {
        handle.map { Int(PQserverVersion($0)) } ?? 0
    }

    /// Runs one statement with text parameters (`$1`, `$2`…) and returns its rows as text.
    @discardableResult
    package func query(_ sql: String, _ parameters: [String?] = []) throws -> [[String?]] {
        guard let handle else { throw LibPQError(sqlState: nil, message: "the connection is closed") }
        let result = withCStrings(parameters) { values in
            PQexecParams(handle, sql, Int32(parameters.count), nil, values, nil, nil, 0)
        }
        // "PQclear … every command result should be freed via PQclear when it is no longer needed."
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK:
            return []
        case PGRES_TUPLES_OK:
            let rowCount = PQntuples(result)
            let columnCount = PQnfields(result)
            return (0..<rowCount).map { row in
                (0..<columnCount).map { column in
                    PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
                }
            }
        default:
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let primary = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
            let message = primary ?? String(cString: PQerrorMessage(handle)).singleLine
            throw LibPQError(sqlState: state, message: message)
        }
    }

    /// Runs a utility statement (those take no parameters); identifiers in it must come from
    /// ``quoteIdentifier(_:)`` and values from ``quoteLiteral(_:)``.
    package func execute(_ sql: String) throws {
        try query(sql)
    }

    /// `value` as an SQL string literal, escaped by libpq for this connection's encoding.
    package func quoteLiteral(_ value: String) throws -> String {
        guard let handle, let escaped = PQescapeLiteral(handle, value, value.utf8.count) else {
            throw LibPQError(sqlState: nil, message: "could not quote a literal")
        }
        defer { PQfreemem(escaped) }
        return String(cString: escaped)
    }
}

/// `name` as a double-quoted SQL identifier: every name pgclone puts in a statement goes through this.
package func quoteIdentifier(_ name: String) -> String {
    "\"" + name.replacing("\"", with: "\"\"") + "\""
}

/// Calls `body` with NULL-terminated keyword and value arrays for `PQconnectdbParams`.
private func withConnectionParameters<Result>(
    _ settings: ConnectionSettings,
    _ body: (UnsafePointer<UnsafePointer<CChar>?>, UnsafePointer<UnsafePointer<CChar>?>) -> Result
) -> Result {
    var keywords = settings.parameters.map(\.keyword)
    var values = settings.parameters.map(\.value)
    if settings.value(for: "fallback_application_name") == nil {
        // With the process ID: a restore refused by another's lock can say which process holds it.
        keywords.append("fallback_application_name")
        values.append("pgclone[\(getpid())]")
    }
    return withCStrings(keywords + [nil]) { keywordPointers in
        withCStrings(values + [nil]) { valuePointers in
            body(keywordPointers, valuePointers)
        }
    }
}

/// Calls `body` with C strings for `strings` (NULL for `nil`), valid for the call only.
private func withCStrings<Result>(
    _ strings: [String?],
    _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> Result
) -> Result {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0)! } }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// The version of the linked libpq, e.g. `15.18`.
package var libpqVersion: String {
    let version = Int(PQlibVersion())
    return "\(version / 10_000).\(version % 10_000)"
}
