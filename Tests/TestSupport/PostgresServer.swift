import Foundation
import PGCloneActors

/// The throwaway PostgreSQL server of the test run, driven through psql (tests may use psql; pgclone
/// itself may not).
package struct PostgresServer: Sendable {
    package var host: String
    package var port: String
    package var user: String
    package var password: String

    /// The server from `PGCLONE_TEST_POSTGRES_URL`.
    package static var shared: PostgresServer {
        get throws {
            guard let url = TestEnvironment.postgresURL, let components = URLComponents(string: url),
                let host = components.host, let port = components.port, let user = components.user
            else { throw TestSetupError("PGCLONE_TEST_POSTGRES_URL is not set; run the tests with scripts/test.sh") }
            return PostgresServer(host: host, port: "\(port)", user: user, password: components.password ?? "")
        }
    }

    /// A connection URI to `database`, password included.
    package func url(_ database: String) -> String {
        "postgresql://\(user):\(password)@\(host):\(port)/\(database)"
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
        guard result.exitCode == 0 else { throw TestSetupError("psql failed: \(result.stderr)\nSQL: \(sql.prefix(500))") }
        return result.stdout.trimmingCharacters(in: .newlines)
    }

    package func createDatabase(_ name: String) async throws {
        try await psql("CREATE DATABASE \(quoteIdentifier(name))")
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
        let output = try await psql(
            """
            SELECT format('%I.%I', n.nspname, c.relname), (xpath('/row/c/text()', r))[1], (xpath('/row/m/text()', r))[1]
            FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            CROSS JOIN LATERAL query_to_xml(format(
                'SELECT count(*) AS c, md5(coalesce(string_agg(x::text, E''\\n'' ORDER BY x::text), '''')) AS m FROM %I.%I AS x',
                n.nspname, c.relname), false, true, '') AS r
            WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg\\_toast%'
            ORDER BY 1
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
