import PGCloneStreams

/// The environment a hook reaches its database with: `DATABASE_URL`, `PGDATABASE` and the other
/// `PG*` variables, each set from what libpq resolved for pgclone's own connection (the options
/// given, the environment, a service file, the defaults) — and nothing else of the caller's libpq
/// environment. A service file's `dbname` would otherwise win over `PGDATABASE` (libpq applies
/// `PGSERVICE` before the environment), and a hook meant for `D__temp` would change the live `D`.
package enum HookEnvironment {
    /// libpq's connection keywords and the variables that set them (libpq's "Environment
    /// Variables"), in libpq's order.
    static let variables: [(keyword: String, variable: String)] = [
        ("host", "PGHOST"), ("hostaddr", "PGHOSTADDR"), ("port", "PGPORT"), ("dbname", "PGDATABASE"),
        ("user", "PGUSER"),
        ("password", "PGPASSWORD"), ("passfile", "PGPASSFILE"), ("require_auth", "PGREQUIREAUTH"),
        ("channel_binding", "PGCHANNELBINDING"), ("service", "PGSERVICE"), ("options", "PGOPTIONS"),
        ("application_name", "PGAPPNAME"), ("sslmode", "PGSSLMODE"), ("requiressl", "PGREQUIRESSL"),
        ("sslnegotiation", "PGSSLNEGOTIATION"), ("sslcompression", "PGSSLCOMPRESSION"), ("sslcert", "PGSSLCERT"),
        ("sslkey", "PGSSLKEY"), ("sslcertmode", "PGSSLCERTMODE"), ("sslrootcert", "PGSSLROOTCERT"),
        ("sslcrl", "PGSSLCRL"),
        ("sslcrldir", "PGSSLCRLDIR"), ("sslsni", "PGSSLSNI"), ("requirepeer", "PGREQUIREPEER"),
        ("ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION"),
        ("ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION"),
        ("gssencmode", "PGGSSENCMODE"), ("krbsrvname", "PGKRBSRVNAME"), ("gsslib", "PGGSSLIB"),
        ("gssdelegation", "PGGSSDELEGATION"), ("connect_timeout", "PGCONNECT_TIMEOUT"),
        ("client_encoding", "PGCLIENTENCODING"), ("target_session_attrs", "PGTARGETSESSIONATTRS"),
        ("load_balance_hosts", "PGLOADBALANCEHOSTS"),
    ]

    /// Variables that point libpq somewhere without naming a keyword's value: always cleared.
    static let cleared = ["PGSERVICEFILE", "PGSYSCONFDIR"]

    /// Keywords the hook's environment never carries from pgclone's connection: where (set from
    /// the connection itself), the service (resolved already), pgclone's own application name.
    static let notCarried: Set<String> = [
        "host", "hostaddr", "port", "dbname", "user", "service", "fallback_application_name",
    ]

    /// The variables to set (a value) or unset (`nil`) for a hook against `database` on the server
    /// that pgclone's connection reached.
    /// - Parameters:
    ///   - resolved: `PQconninfo` of pgclone's connection.
    ///   - endpoint: where it went (`PQhost`, `PQport`, `PQuser`).
    package static func make(
        resolved: [(keyword: String, value: String, compiledDefault: String?)],
        endpoint: (host: String, port: String, user: String),
        database: String
    ) -> [String: String?] {
        var environment: [String: String?] = [:]
        for (_, variable) in variables { environment[variable] = .some(nil) }
        for variable in cleared { environment[variable] = .some(nil) }
        environment["PGHOST"] = endpoint.host
        environment["PGPORT"] = endpoint.port
        environment["PGUSER"] = endpoint.user
        environment["PGDATABASE"] = database
        // Set for hooks alone, so that a tool the hook runs (the Django app's start-up) can tell
        // it runs as one and point its own connection at `database`.
        environment["PGCLONE_HOOK_DATABASE"] = database
        var query: [(String, String)] = []
        var password: String?
        for option in resolved where !notCarried.contains(option.keyword) && !option.value.isEmpty {
            guard option.value != option.compiledDefault,
                let variable = variables.first(where: { $0.keyword == option.keyword })?.variable
            else { continue }
            environment[variable] = option.value
            if option.keyword == "password" {
                password = option.value
            } else {
                query.append((option.keyword, option.value))
            }
        }
        environment["DATABASE_URL"] = url(endpoint: endpoint, password: password, database: database, query: query)
        return environment
    }

    /// `postgresql://user[:password]@host:port/database?keyword=value…`; a Unix-domain socket
    /// directory goes in the query string as `host`.
    static func url(
        endpoint: (host: String, port: String, user: String),
        password: String?,
        database: String,
        query: [(String, String)]
    ) -> String {
        var url = "postgresql://" + percentEncode(endpoint.user)
        if let password { url += ":" + percentEncode(password) }
        var query = query
        if endpoint.host.hasPrefix("/") {
            url += "@/" + percentEncode(database)
            query.insert(("host", endpoint.host), at: 0)
            query.insert(("port", endpoint.port), at: 1)
        } else {
            let host = endpoint.host.contains(":") ? "[\(endpoint.host)]" : endpoint.host
            url += "@" + host + ":" + endpoint.port + "/" + percentEncode(database)
        }
        if !query.isEmpty {
            url += "?" + query.map { percentEncode($0.0) + "=" + percentEncode($0.1) }.joined(separator: "&")
        }
        return url
    }
}
