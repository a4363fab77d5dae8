import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// A hook reaches the database it is meant for — `D__temp` before the swap, the source before a
/// dump — whichever of libpq's ways named pgclone's database: a service file's `dbname` must not
/// win over the hook's `PGDATABASE`.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct HookEnvironmentTests {
    enum Naming: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case serviceInTheEnvironment = "PGSERVICE and PGSERVICEFILE"
        case serviceInTheConnectionString = "service= with PGSERVICEFILE"
        case pgdatabase = "PGDATABASE"
        case databaseURL = "DATABASE_URL"
        case keyValueDatabase = "key=value --database"

        var testDescription: String { rawValue }

        /// pgclone's arguments and environment to reach `database` this way.
        func connection(
            to database: String,
            on server: PostgresServer,
            directory: String
        ) throws -> (arguments: [String], environment: [String: String?]) {
            let serviceFile = directory + "/pg_service.conf"
            try """
            [pgclone_test]
            host=\(server.host)
            port=\(server.port)
            user=\(server.user)
            password=\(server.password)
            dbname=\(database)
            """.write(toFile: serviceFile, atomically: true, encoding: .utf8)
            switch self {
            case .serviceInTheEnvironment:
                return ([], ["PGSERVICE": "pgclone_test", "PGSERVICEFILE": serviceFile])
            case .serviceInTheConnectionString:
                return (["--database", "service=pgclone_test"], ["PGSERVICEFILE": serviceFile])
            case .pgdatabase:
                return ([], server.environment(database))
            case .databaseURL:
                return ([], ["DATABASE_URL": server.url(database)])
            case .keyValueDatabase:
                return (
                    ["--database", "host=\(server.host) port=\(server.port) user=\(server.user) dbname=\(database)"],
                    ["PGPASSWORD": server.password]
                )
            }
        }
    }

    /// Prints the database the hook reaches through its PG* variables and through DATABASE_URL,
    /// and the database and phase pgclone names to hooks alone.
    static let hook =
        #"psql -X -At -c 'SELECT current_database()' && psql -X -At "$DATABASE_URL" -c 'SELECT current_database()' && "#
        + #"echo "$PGCLONE_HOOK_DATABASE" && echo "phase $PGCLONE_HOOK_PHASE""#

    @Test(arguments: Naming.allCases)
    func preSwapHooksReachTheTemporaryDatabase(naming: Naming) async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("hookenv")
        let (arguments, environment) = try naming.connection(
            to: target,
            on: pgclone.server,
            directory: pgclone.directory
        )
        let result = try await pgclone.run(
            ["restore", key, "--pre-swap-hook", Self.hook] + arguments,
            environment: environment
        )
        #expect(result.exitCode == 0, "\(naming): \(result)")
        let reached = result.stderrLines.filter { $0.hasPrefix("pgclone: pre-swap hook 1: ") }
        #expect(
            reached == Array(repeating: "pgclone: pre-swap hook 1: \(target)__temp", count: 3) + [
                "pgclone: pre-swap hook 1: phase pre-swap"
            ],
            "\(naming): \(result)"
        )
        #expect(try await pgclone.server.markers(target) == "new")
    }

    @Test(arguments: Naming.allCases)
    func preDumpHooksReachTheSource(naming: Naming) async throws {
        let pgclone = try PGCloneHarness()
        let source = TestEnvironment.uniqueName("hookenv_src")
        try await pgclone.server.createDatabase(source)
        let (arguments, environment) = try naming.connection(
            to: source,
            on: pgclone.server,
            directory: pgclone.directory
        )
        let result = try await pgclone.run(
            ["dump", "--pre-dump-hook", Self.hook] + arguments,
            environment: environment
        )
        #expect(result.exitCode == 0, "\(naming): \(result)")
        let reached = result.stderrLines.filter { $0.hasPrefix("pgclone: pre-dump hook 1: ") }
        #expect(
            reached == Array(repeating: "pgclone: pre-dump hook 1: \(source)", count: 3) + [
                "pgclone: pre-dump hook 1: phase pre-dump"
            ],
            "\(naming): \(result)"
        )
    }
}
