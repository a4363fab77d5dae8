internal import CPGCloneLibPQ
import Dispatch
import Glibc
import PGCloneStreams
import Synchronization

/// One libpq connection, owned by an actor whose executor is its own dispatch queue: libpq's calls
/// block, and they must never block Swift's cooperative pool.
package actor PostgresConnection {
    private let executor = DispatchQueueExecutor(label: "pgclone.libpq")
    package nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    package nonisolated let settings: ConnectionSettings
    /// `PGconn *`; freed by ``close()`` or, as a last resort, `deinit`.
    private var handle: OpaquePointer?
    /// Cancels the running cancellable statement from any thread.
    nonisolated let canceller = QueryCanceller()
    /// The last message the server sent while the session was idle (``endedReason()``).
    private var idleNotice: String?

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
    /// round trip to the server. `nil` if libpq cannot read the settings (for labels; see
    /// ``databaseName(_:)`` for why).
    package static func resolveDatabaseName(_ settings: ConnectionSettings) async -> String? {
        try? await databaseName(settings)
    }

    /// The database name libpq would connect to with `settings`, as ``resolveDatabaseName(_:)``.
    /// - Throws: ``PGCloneError`` (`invalidConfiguration`) with libpq's reason when it cannot read
    ///   the settings: a service that is not defined, a service file it cannot find, a connection
    ///   string it cannot parse.
    package static func databaseName(_ settings: ConnectionSettings) async throws -> String {
        try await PostgresConnection(settings: settings).resolveDatabaseName()
    }

    private func resolveDatabaseName() throws(PGCloneError) -> String {
        // PQconnectStartParams resolves every option (environment, service file, defaults) before
        // it starts the non-blocking connect, which is abandoned at once. Options it cannot read
        // leave it without a database name (a refused first connect attempt, later, does not).
        let connection = withConnectionParameters(settings) { keywords, values in
            PQconnectStartParams(keywords, values, 0)
        }
        guard let connection else {
            throw PGCloneError(.invalidConfiguration, "libpq could not allocate a connection")
        }
        defer { PQfinish(connection) }
        guard let name = PQdb(connection) else {
            let reason = LibPQError.oneLine(String(cString: PQerrorMessage(connection)))
            throw PGCloneError(
                .invalidConfiguration,
                """
                cannot read the connection settings: \(reason.isEmpty ? "libpq gave no reason" : reason); check \
                --database (or DATABASE_URL), PGSERVICE and PGSERVICEFILE
                """
            )
        }
        return String(cString: name)
    }

    private func open() throws {
        let connection = withConnectionParameters(settings) { keywords, values in
            PQconnectdbParams(keywords, values, 0)
        }
        guard let connection else {
            throw LibPQError(sqlState: nil, message: "out of memory allocating a connection")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let error = LibPQError.connectionFailed(
                String(cString: PQerrorMessage(connection)),
                database: PQdb(connection).map { String(cString: $0) } ?? settings.value(for: "dbname") ?? "",
                usedPassword: PQconnectionUsedPassword(connection) == 1,
                explicitPassword: Self.hasExplicitPassword(connection)
            )
            PQfinish(connection)
            throw error
        }
        // libpq prints NOTICEs (such as DROP … IF EXISTS's "skipping") on stderr by default.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        handle = connection
        canceller.attach(PQgetCancel(connection))
    }

    /// Whether `connection` was given a password in its parameters, `PGPASSWORD` or a service file:
    /// `PQconninfo` shows that one, never one libpq found in the password file.
    private static func hasExplicitPassword(_ connection: OpaquePointer) -> Bool {
        guard let options = PQconninfo(connection) else { return false }
        defer { PQconninfoFree(options) }
        var option = options
        while let keyword = option.pointee.keyword {
            if String(cString: keyword) == "password", let value = option.pointee.val, value.pointee != 0 {
                return true
            }
            option += 1
        }
        return false
    }

    /// Sets session parameters (`statement_timeout`, `lock_timeout`…) for this connection's own SQL,
    /// and turns off `idle_session_timeout` (PostgreSQL 14 and later), which a role or database
    /// may set: pgclone's sessions wait idle for as long as a restore or dump takes.
    package func apply(_ settings: [(name: String, value: String)]) async throws {
        for setting in Self.idleSessionSettings(serverMajor: serverVersion / 10_000) + settings {
            try await query("SELECT set_config($1, $2, false)", [setting.name, setting.value])
        }
    }

    /// `idle_session_timeout = 0` for a server that has it (14 and later), for sessions that wait
    /// idle while a restore goes on.
    package static func idleSessionSettings(serverMajor: Int) -> [(name: String, value: String)] {
        serverMajor >= 14 ? [("idle_session_timeout", "0")] : []
    }

    /// Closes the connection; idempotent.
    package func close() {
        canceller.attach(nil)
        if let handle { PQfinish(handle) }
        handle = nil
    }

    /// Whether statements can still be sent (the connection is open and not broken).
    package var isUsable: Bool {
        handle.map { PQstatus($0) == CONNECTION_OK } ?? false
    }

    /// Why the server ended this session, found without blocking, or `nil` while it is open: a
    /// session it ends (`pg_terminate_backend`, a shutdown) gets a FATAL error and its socket
    /// closed, which libpq sees only when it reads; this reads what is waiting, if anything. Call
    /// between statements (an actor's calls never overlap).
    package func endedReason() -> String? {
        guard let handle else { return "the connection is closed" }
        if PQstatus(handle) == CONNECTION_OK {
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 0) > 0 else { return nil }
            // An error the server sends an idle session (its FATAL before it ends it) goes to the
            // notice processor: kept, as the reason libpq's own message does not give.
            let notices = IdleNotices()
            PQsetNoticeProcessor(
                handle,
                { context, message in
                    guard let context, let message else { return }
                    Unmanaged<IdleNotices>.fromOpaque(context).takeUnretainedValue().last = String(cString: message)
                },
                Unmanaged.passUnretained(notices).toOpaque()
            )
            let consumed = PQconsumeInput(handle)
            // Parses what was read (PQconsumeInput only reads): an error goes to the processor.
            _ = PQisBusy(handle)
            PQsetNoticeProcessor(handle, { _, _ in }, nil)
            if let notice = notices.last { idleNotice = notice }
            guard consumed == 0 || PQstatus(handle) != CONNECTION_OK else { return nil }
        }
        let reasons = [idleNotice ?? "", String(cString: PQerrorMessage(handle))].map(LibPQError.oneLine)
        let reason = reasons.filter { !$0.isEmpty }.joined(separator: "; ")
        return reason.isEmpty ? "the server closed the connection" : reason
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
    ///
    /// A `cancellable` statement is cancelled on the server (`PQcancel`) when the task is, and then
    /// throws `CancellationError`; others run to their end whatever happens to the task, as
    /// clean-up after an interrupt must.
    /// - Throws: ``LibPQError`` with the server's fields and the statement.
    @discardableResult
    package nonisolated func query(
        _ sql: String,
        _ parameters: [String?] = [],
        cancellable: Bool = false
    ) async throws -> [[String?]] {
        guard cancellable else { return try await perform(sql, parameters, cancellable: false) }
        let canceller = self.canceller
        do {
            return try await withTaskCancellationHandler {
                try await perform(sql, parameters, cancellable: true)
            } onCancel: {
                // PQcancel opens a connection of its own: not on the cooperative pool.
                DispatchQueue.global().async { canceller.cancel() }
            }
        } catch let error as LibPQError where error.isQueryCanceled && Task.isCancelled {
            throw CancellationError()
        }
    }

    /// Runs a utility statement (those take no parameters); identifiers in it must come from
    /// ``quoteIdentifier(_:)`` and values from ``quoteLiteral(_:)``.
    package nonisolated func execute(_ sql: String, cancellable: Bool = false) async throws {
        try await query(sql, cancellable: cancellable)
    }

    private func perform(_ sql: String, _ parameters: [String?], cancellable: Bool) throws -> [[String?]] {
        let handle = try openHandle(for: sql)
        if cancellable {
            if Task.isCancelled { throw CancellationError() }
            canceller.setActive(true)
        }
        let result = withCStrings(parameters) { values in
            PQexecParams(handle, sql, Int32(parameters.count), nil, values, nil, nil, 0)
        }
        // Waits for a cancel request in flight, so that it never reaches the next statement.
        if cancellable { canceller.setActive(false) }
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
            throw error(from: result, statement: sql)
        }
    }

    /// Runs a utility statement as ``execute(_:cancellable:)`` does, and returns the WARNINGs
    /// the server sent for it (`WARNING:  no privileges could be revoked for "f"`), which are
    /// otherwise dropped with the other notices.
    /// - Throws: ``LibPQError`` with the server's fields and the statement.
    package func executeReturningWarnings(_ sql: String) throws -> [String] {
        let handle = try openHandle(for: sql)
        let notices = Notices()
        PQsetNoticeProcessor(
            handle,
            { context, message in
                guard let context, let message else { return }
                Unmanaged<Notices>.fromOpaque(context).takeUnretainedValue().all.append(String(cString: message))
            },
            Unmanaged.passUnretained(notices).toOpaque()
        )
        defer { PQsetNoticeProcessor(handle, { _, _ in }, nil) }
        _ = try perform(sql, [], cancellable: false)
        return notices.all.filter { $0.hasPrefix("WARNING:") }.map(LibPQError.oneLine)
    }

    /// The connection's `PGconn *`, or the error of a closed one, for `statement`.
    func openHandle(for statement: String?) throws(LibPQError) -> OpaquePointer {
        guard let handle else {
            throw LibPQError(
                sqlState: nil,
                message: "the connection is closed",
                statement: statement,
                connectionLost: true
            )
        }
        return handle
    }

    /// The error a failed `result` (or a `nil` one) describes.
    func error(from result: OpaquePointer?, statement: String?) -> LibPQError {
        func field(_ code: Character) -> String? {
            guard let result else { return nil }
            return PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0).singleLine }
        }
        // The session is gone also when the server says it is ending it (a FATAL or PANIC error:
        // terminated by an administrator, a crash, a shutdown, a timeout): libpq sees the socket
        // close only on a later call, after the error of a COPY that was running has come. (An
        // ERROR of class 08 is a remote server's, through dblink or a foreign table: this session
        // goes on.)
        let sqlState = field("C")
        let ended = ["FATAL", "PANIC"].contains(field("V") ?? "")
        let lost = ended || (handle.map { PQstatus($0) == CONNECTION_BAD } ?? true)
        let fallback =
            handle.map { LibPQError.oneLine(String(cString: PQerrorMessage($0))) } ?? "the connection is closed"
        return LibPQError(
            sqlState: sqlState,
            message: field("M") ?? (fallback.isEmpty ? "the server closed the connection" : fallback),
            detail: field("D"),
            hint: field("H"),
            context: field("W"),
            // What was running when the session ended has nothing to do with why.
            statement: lost ? nil : statement,
            connectionLost: lost
        )
    }

    // MARK: A statement left running

    /// Sends `sql` without waiting for its end (`PQsendQuery`), for a statement that must go on
    /// running on the server whatever happens to pgclone (the swap's guard). ``finishSent()``
    /// collects its outcome.
    package func send(_ sql: String) throws {
        let handle = try openHandle(for: sql)
        guard PQsendQuery(handle, sql) == 1 else { throw error(from: nil, statement: sql) }
    }

    /// Waits for the statement ``send(_:)`` sent to end (blocking this connection's own thread);
    /// throws its error.
    package func finishSent() throws {
        let handle = try openHandle(for: nil)
        var failure: LibPQError?
        while let result = PQgetResult(handle) {
            let status = PQresultStatus(result)
            if status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && failure == nil {
                failure = error(from: result, statement: nil)
            }
            PQclear(result)
        }
        if let failure { throw failure }
        if PQstatus(handle) == CONNECTION_BAD { throw error(from: nil, statement: nil) }
    }

    /// The server process of this session (`PQbackendPID`), as `pg_stat_activity.pid` shows it.
    package var backendPID: Int32 {
        handle.map { PQbackendPID($0) } ?? 0
    }

    /// Every connection option as libpq resolved it for this connection (`PQconninfo`): what was
    /// given, what the environment, service file and defaults filled in. Options without a value
    /// are left out.
    package var resolvedOptions: [(keyword: String, value: String, compiledDefault: String?)] {
        guard let handle, let options = PQconninfo(handle) else { return [] }
        defer { PQconninfoFree(options) }
        var resolved: [(keyword: String, value: String, compiledDefault: String?)] = []
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val {
                resolved.append(
                    (
                        String(cString: keyword), String(cString: value),
                        option.pointee.compiled.map { String(cString: $0) }
                    )
                )
            }
            option += 1
        }
        return resolved
    }

    /// `value` as an SQL string literal, or `NULL`.
    package func quoteLiteral(orNull value: String?) throws -> String {
        try value.map(quoteLiteral) ?? "NULL"
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
    defer { for copy in copies { free(copy) } }
    let pointers = copies.map { UnsafePointer($0) }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// The version of the linked libpq, e.g. `15.18`.
package var libpqVersion: String {
    let version = Int(PQlibVersion())
    return "\(version / 10_000).\(version % 10_000)"
}

/// `PQgetCancel`'s object for one connection. `cancel()` may come from any thread; it sends a cancel
/// request only while a cancellable statement runs, and ``setActive(_:)`` waits for a request in
/// flight, so that a late one never cancels the statement after.
final class QueryCanceller: Sendable {
    private struct State {
        /// The `PGcancel *`, as its bit pattern (a pointer is not `Sendable`).
        var cancel: Int = 0
        var active = false
    }

    private let state = Mutex(State())

    func attach(_ cancel: OpaquePointer?) {
        state.withLock { state in
            if let old = OpaquePointer(bitPattern: state.cancel) { PQfreeCancel(old) }
            state.cancel = Int(bitPattern: cancel)
            state.active = false
        }
    }

    func setActive(_ active: Bool) {
        state.withLock { $0.active = active }
    }

    func cancel() {
        state.withLock { state in
            guard state.active, let cancel = OpaquePointer(bitPattern: state.cancel) else { return }
            var buffer = [CChar](repeating: 0, count: 256)
            _ = PQcancel(cancel, &buffer, Int32(buffer.count))
        }
    }

    deinit {
        attach(nil)
    }
}

/// What the notice processor saw during one ``PostgresConnection/endedReason()``, on the
/// connection's own queue.
private final class IdleNotices {
    var last: String?
}

/// What the notice processor saw during one ``PostgresConnection/executeReturningWarnings(_:)``,
/// on the connection's own queue.
private final class Notices {
    var all: [String] = []
}
