internal import CPGCloneLibPQ
import PGCloneStreams

/// How to reach PostgreSQL, exactly as libpq (and so psql, pg_dump, pg_restore) would: the
/// parameters given explicitly — `--database` or `DATABASE_URL`, a URI or a `key=value` string, or a
/// bare database name as psql's `-d` takes it — and, for everything not given, the `PG*`
/// environment variables, `.pgpass` and service files, which libpq and the child processes read
/// themselves.
///
/// Secrets never reach a child's argv: ``childConnectionString`` leaves them out and
/// ``childEnvironment`` carries the password as `PGPASSWORD`.
package struct ConnectionSettings: Sendable, Equatable {
    package struct Parameter: Sendable, Equatable {
        package var keyword: String
        package var value: String
    }

    /// Explicit parameters, as libpq keywords, in libpq's order.
    package private(set) var parameters: [Parameter]

    /// Keywords whose values are secrets.
    static let secretKeywords: Set<String> = ["password", "sslpassword"]

    /// No explicit parameters: libpq's environment and defaults decide everything.
    package init() {
        parameters = []
    }

    /// Parses `conninfo` as libpq does; `where` names its origin for the error message.
    /// - Throws: `.invalidConfiguration` for a string libpq cannot parse, one that names nothing,
    ///   or an empty database name.
    package init(conninfo: String, from origin: String) throws(PGCloneError) {
        let trimmed = conninfo.trimmingWhitespace()
        guard !trimmed.isEmpty else {
            parameters = []
            return
        }
        if let scheme = trimmed.firstRange(of: "://"),
            !trimmed.hasPrefix("postgresql://") && !trimmed.hasPrefix("postgres://")
        {
            // SQLAlchemy's postgresql+psycopg2://, jdbc:postgresql://…: libpq reads none of them,
            // and taken as a database name the whole URL — password included — would be shown.
            throw PGCloneError(
                .invalidConfiguration,
                """
                the connection string in \(origin) is a \(trimmed[..<scheme.lowerBound]):// URL, which libpq does \
                not read; write it as postgresql://user@host:5432/dbname
                """
            )
        }
        let isConnectionString =
            trimmed.hasPrefix("postgresql://") || trimmed.hasPrefix("postgres://") || trimmed.contains("=")
        guard isConnectionString else {
            // psql's rule: without `=` or a URI scheme, the argument is a database name.
            parameters = [Parameter(keyword: "dbname", value: conninfo)]
            return
        }
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(trimmed, &errorMessage) else {
            // libpq quotes the token it could not read, which may be the password.
            let detail = Self.redactingPassword(
                of: trimmed,
                in: errorMessage.map { String(cString: $0).singleLine } ?? "out of memory"
            )
            if let errorMessage { PQfreemem(errorMessage) }
            throw PGCloneError(
                .invalidConfiguration,
                "invalid connection string in \(origin): \(detail); give a postgresql:// URI or key=value pairs"
            )
        }
        defer { PQconninfoFree(options) }
        var parsed: [Parameter] = []
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val {
                parsed.append(Parameter(keyword: String(cString: keyword), value: String(cString: value)))
            }
            option += 1
        }
        // libpq reads `postgresql://:@:/` as nothing at all and `dbname=` as no database: both
        // would fall back to its defaults, which for a restore means replacing a database nobody
        // named.
        guard !parsed.isEmpty else {
            throw PGCloneError(
                .invalidConfiguration,
                """
                the connection string in \(origin) names nothing (no host, user or database); give one like \
                postgresql://user@host:5432/dbname
                """
            )
        }
        if parsed.contains(where: { $0.keyword == "dbname" && $0.value.trimmingWhitespace().isEmpty }) {
            throw PGCloneError(
                .invalidConfiguration,
                """
                the connection string in \(origin) has an empty database name; name the database, or leave dbname \
                out to use PGDATABASE
                """
            )
        }
        // libpq reads a port only when it connects, and its refusal would read as the server's.
        if let port = parsed.last(where: { $0.keyword == "port" })?.value,
            let wrong = port.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingWhitespace() })
                .first(where: { !$0.isEmpty && !(Int($0).map { (1...65_535).contains($0) } ?? false) })
        {
            throw PGCloneError(
                .invalidConfiguration,
                """
                the port in the connection string in \(origin) is \"\(wrong)\", which is not a port number (1 to \
                65535); give one like postgresql://user@host:5432/dbname
                """
            )
        }
        parameters = parsed
    }

    /// Whether the database is named somewhere — in these parameters, a service, or `PGDATABASE` —
    /// rather than left to libpq's default (the user's name).
    package func namesDatabase(environment: [String: String]) -> Bool {
        let named = { (value: String?) in !(value ?? "").trimmingWhitespace().isEmpty }
        return named(value(for: "dbname")) || named(value(for: "service")) || named(environment["PGDATABASE"])
            || named(environment["PGSERVICE"])
    }

    /// `text` with the password written in `conninfo` (a URI's user information, or a
    /// `password=` value) masked.
    static func redactingPassword(of conninfo: String, in text: String) -> String {
        var secrets: [String] = []
        if let scheme = conninfo.firstRange(of: "://") {
            let rest = conninfo[scheme.upperBound...]
            if let password = URLPassword.range(in: conninfo) { secrets.append(String(conninfo[password])) }
            if let query = rest.firstIndex(of: "?") {
                for pair in rest[rest.index(after: query)...].split(separator: "&") where pair.hasPrefix("password=") {
                    secrets.append(String(pair.dropFirst("password=".count)))
                }
            }
        } else if let range = conninfo.firstRange(of: "password") {
            let value = conninfo[range.upperBound...].drop { $0 == " " || $0 == "=" }
            secrets.append(
                String(value.first == "'" ? value.dropFirst().prefix { $0 != "'" } : value.prefix { $0 != " " })
            )
        }
        return secrets.filter { !$0.isEmpty }.reduce(text) { $0.replacing($1, with: "****") }
    }

    package func value(for keyword: String) -> String? {
        parameters.last(where: { $0.keyword == keyword })?.value
    }

    /// The same settings with `keyword` set to `value` (replacing an earlier value).
    package func adding(_ keyword: String, _ value: String) -> ConnectionSettings {
        var copy = self
        copy.parameters.removeAll { $0.keyword == keyword }
        copy.parameters.append(Parameter(keyword: keyword, value: value))
        return copy
    }

    /// The same settings with `-c name=value` added to the session's `options` after those already
    /// given (in the connection string, else in `PGOPTIONS` of `environment`, which an explicit
    /// `options` would otherwise hide): a later `-c` wins over an earlier one.
    package func addingSessionSettings(
        _ settings: [(name: String, value: String)],
        environment: [String: String]
    ) -> ConnectionSettings {
        guard !settings.isEmpty else { return self }
        let given = value(for: "options") ?? environment["PGOPTIONS"] ?? ""
        let added = settings.map { "-c \($0.name)=\($0.value)" }.joined(separator: " ")
        return adding("options", given.trimmingWhitespace().isEmpty ? added : given + " " + added)
    }

    /// The same settings, connecting to database `name`.
    package func replacingDatabase(_ name: String) -> ConnectionSettings {
        adding("dbname", name)
    }

    /// `key='value'` pairs of every explicit parameter except secrets, for `--dbname=` of pg_dump and
    /// pg_restore (values quoted as libpq's parser expects).
    package var childConnectionString: String {
        parameters.filter { !Self.secretKeywords.contains($0.keyword) }.map { parameter in
            let escaped = parameter.value.replacing("\\", with: "\\\\").replacing("'", with: "\\'")
            return "\(parameter.keyword)='\(escaped)'"
        }.joined(separator: " ")
    }

    /// Environment for child processes: the explicit password, which must not appear in argv.
    package var childEnvironment: [String: String] {
        value(for: "password").map { ["PGPASSWORD": $0] } ?? [:]
    }

    /// For logs: the explicit parameters with secrets masked.
    package var redactedDescription: String {
        if parameters.isEmpty { return "(from the environment)" }
        return parameters.map {
            Self.secretKeywords.contains($0.keyword) ? "\($0.keyword)=****" : "\($0.keyword)=\($0.value)"
        }
        .joined(separator: " ")
    }
}
