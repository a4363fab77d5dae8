import Foundation

extension ConnectionSettings {
    /// The environment a hook needs to reach `database` on the server `connection` reached:
    /// `DATABASE_URL` and the `PG*` variables (the password only if pgclone was given one;
    /// otherwise libpq finds it where pgclone's did, in `.pgpass` or `PGPASSWORD`).
    package func hookEnvironment(database: String, endpoint: (host: String, port: String, user: String)) -> [String: String] {
        var environment = ["PGDATABASE": database, "PGHOST": endpoint.host, "PGPORT": endpoint.port, "PGUSER": endpoint.user]
        let password = value(for: "password") ?? ProcessInfo.processInfo.environment["PGPASSWORD"]
        if let password { environment["PGPASSWORD"] = password }
        var url = "postgresql://" + percentEncode(endpoint.user)
        if let password { url += ":" + percentEncode(password) }
        if endpoint.host.hasPrefix("/") {
            // A Unix-domain socket directory goes in the query string.
            url += "@/" + percentEncode(database) + "?host=" + percentEncode(endpoint.host) + "&port=" + endpoint.port
        } else {
            let host = endpoint.host.contains(":") ? "[\(endpoint.host)]" : endpoint.host
            url += "@" + host + ":" + endpoint.port + "/" + percentEncode(database)
        }
        if let sslmode = value(for: "sslmode") {
            url += (url.contains("?") ? "&" : "?") + "sslmode=" + percentEncode(sslmode)
            environment["PGSSLMODE"] = sslmode
        }
        environment["DATABASE_URL"] = url
        return environment
    }
}
