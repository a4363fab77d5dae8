import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// Where restore, copy and `ls --local` connect for their administrative statements: as createdb
/// does, `postgres`, else `template1` when `postgres` refuses the role for a reason about that
/// database; only the database `--maintenance-db` (or `PGCLONE_MAINTENANCE_DB`, `maintenance_db`)
/// names when one is named. And every refused connection names its database.
///
/// The shared server cannot take CONNECT on `postgres` from everyone while other tests run, so
/// `postgres` refuses the test's role through a password file whose line for `postgres` alone
/// holds a wrong password — a refusal about that database, as pg_hba.conf's or CONNECT's are —
/// and CONNECT is revoked only on databases the tests create.
@Suite(
    .serialized,
    .enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)")
)
struct MaintenanceDatabaseTests {
    /// A harness running as a new `LOGIN CREATEDB` role with a password (not a superuser).
    private func application() async throws -> (server: PostgresServer, app: PGCloneHarness) {
        let server = try PostgresServer.shared
        return (server, try PGCloneHarness(server: try await server.createRole("app", attributes: "CREATEDB")))
    }

    /// What libpq says of the role's password taken from `file`, which the server refused.
    private func refusedPassword(_ app: PGCloneHarness, file: String) -> String {
        """
        connection to server at \"\(app.server.host)\", port \(app.server.port) failed: FATAL: password \
        authentication failed for user \"\(app.server.user)\"; password retrieved from file \"\(file)\"
        """
    }

    @Test func postgresRefusingTheRoleFallsBackToTemplate1ForRestoreCopyAndList() async throws {
        let (_, app) = try await application()
        let (key, target) = try await app.targetAndDump("md_fb")
        let file = try app.writePasswordFile(wrongFor: ["postgres"])
        let environment: [String: String?] = ["PGPASSFILE": file.path]
        // No password in the connection string: libpq takes it from the file, per database.
        let conninfo = app.server.conninfo(target)
        let passedOver = """
            pgclone: the maintenance database is \"template1\": \"postgres\" refused the connection \
            (\(refusedPassword(app, file: file.path))); CREATE DATABASE from template1 waits while pgclone is in it
            """

        let restored = try await app.run(["restore", key, "--database", conninfo], environment: environment)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(restored.stderrLines.contains(passedOver), "\(restored)")
        #expect(try await app.server.markers(target) == "new")

        let snapshot = TestEnvironment.uniqueName("md_fb_copy")
        let copied = try await app.run(["copy", ":\(snapshot)", "--database", conninfo], environment: environment)
        #expect(copied.exitCode == 0, "\(copied)")
        #expect(copied.stderrLines.contains(passedOver), "\(copied)")
        #expect(try await app.server.markers(snapshot) == "new")

        let listed = try await app.run(["ls", "--local", "--database", conninfo], environment: environment)
        #expect(listed.exitCode == 0, "\(listed)")
        let names = listed.stdout.split(separator: "\n").map(String.init)
        #expect(names.contains(":\(target)") && names.contains(":\(snapshot)"), "\(listed)")
        // Neither maintenance database is a source to restore, whichever pgclone is in.
        #expect(!names.contains(":postgres") && !names.contains(":template1"), "\(listed)")
        for result in [restored, copied, listed] {
            #expect(!result.stderr.contains(app.server.password) && !result.stderr.contains(file.wrongPassword))
        }
    }

    /// The refusals about a database — no CONNECT privilege, not accepting connections, not there
    /// — pass it over; those about the server or the role fail at once, naming the one database
    /// tried.
    @Test func aMaintenanceDatabaseThatRefusesTheRoleIsPassedOverUnlessTheServerRefusedIt() async throws {
        let server = try PostgresServer.shared
        let app = try await server.createRole("app")
        let revoked = TestEnvironment.uniqueName("md_noconnect")
        try await server.createDatabase(revoked)
        try await server.psql("REVOKE CONNECT ON DATABASE \(quoteIdentifier(revoked)) FROM PUBLIC")
        let closed = TestEnvironment.uniqueName("md_closed")
        try await server.psql("CREATE DATABASE \(quoteIdentifier(closed)) TEMPLATE template0 ALLOW_CONNECTIONS false")
        let missing = TestEnvironment.uniqueName("md_missing")
        let settings = try ConnectionSettings(conninfo: app.url("postgres"), from: "test")

        for first in [revoked, closed, missing] {
            let admin = try await PostgresConnection.connectMaintenance(
                settings,
                MaintenanceDatabase(candidates: [first, "template1"])
            )
            #expect(await admin.databaseName == "template1", "\(first)")
            await admin.close()
        }

        let at = "connection to server at \"\(server.host)\", port \(server.port) failed: FATAL:"
        // Named, it is the only one tried: one line saying why, exit code 2 (nothing was done).
        let named = await refusal {
            try await PostgresConnection.connectMaintenance(settings, .named(revoked, origin: "--maintenance-db"))
        }
        #expect(named?.code == .invalidConfiguration)
        #expect(
            named?.description
                == """
                cannot connect to the maintenance database \"\(revoked)\" (--maintenance-db): \(at) permission \
                denied for database \"\(revoked)\"; name one the role may connect to
                """
        )
        #expect(named?.details == [PGCloneError.Detail("detail", "User does not have CONNECT privilege.")])

        // A password given explicitly is wrong for every database: template1 is not tried.
        let wrong = try ConnectionSettings(
            conninfo: app.connecting(as: app.user, password: "wrong-\(UUID().uuidString)").url("postgres"),
            from: "test"
        )
        let badPassword = await refusal {
            try await PostgresConnection.connectMaintenance(
                wrong,
                MaintenanceDatabase(candidates: [revoked, "template1"])
            )
        }
        #expect(badPassword?.code == .databaseUnavailable)
        #expect(
            badPassword?.description == """
                cannot connect to the maintenance database \"\(revoked)\": \(at) password authentication failed for \
                user \
                \"\(app.user)\"
                """
        )

        // Nor when the server cannot be reached.
        let nowhere = try ConnectionSettings(conninfo: "host=127.0.0.1 port=1 user=\(app.user)", from: "test")
        let unreachable = await refusal { try await PostgresConnection.connectMaintenance(nowhere) }
        #expect(unreachable?.code == .databaseUnavailable)
        #expect(
            unreachable?.description
                == """
                cannot connect to the maintenance database \"postgres\": connection to server at \"127.0.0.1\", \
                port 1 failed: Connection refused; Is the server running on that host and accepting TCP/IP \
                connections?
                """
        )
    }

    @Test func aNamedMaintenanceDatabaseIsTheOnlyOneTriedAndNeverTheTarget() async throws {
        let (server, app) = try await application()
        let (key, target) = try await app.targetAndDump("md_named")
        let maintenance = TestEnvironment.uniqueName("md_admin")
        try await server.createDatabase(maintenance)
        // Both of createdb's maintenance databases refuse the role.
        let file = try app.writePasswordFile(wrongFor: ["postgres", "template1"])
        let environment: [String: String?] = ["PGPASSFILE": file.path]
        let conninfo = app.server.conninfo(target)
        let refused = refusedPassword(app, file: file.path)

        let neither = try await app.run(["restore", key, "--database", conninfo], environment: environment)
        #expect(neither.exitCode == 2, "\(neither)")
        #expect(
            neither.errorLines == [
                """
                pgclone: error: cannot connect to the maintenance database \"postgres\" (\(refused)) or \
                \"template1\" (\(refused)); name one the role may connect to with --maintenance-db
                """
            ],
            "\(neither)"
        )
        #expect(try await app.server.markers(target) == "old")

        // Named by the flag, the environment or the config file, it is where restore, copy and
        // ls --local go.
        let restored = try await app.run(
            ["restore", key, "--database", conninfo, "--maintenance-db", maintenance],
            environment: environment
        )
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(!restored.stderr.contains("refused the connection"), "\(restored)")
        #expect(try await app.server.markers(target) == "new")
        var fromEnvironment = environment
        fromEnvironment["PGCLONE_MAINTENANCE_DB"] = maintenance
        let again = try await app.run(["restore", key, "--database", conninfo], environment: fromEnvironment)
        #expect(again.exitCode == 0, "\(again)")
        let snapshot = TestEnvironment.uniqueName("md_named_copy")
        let copied = try await app.run(
            ["copy", ":\(snapshot)", "--database", conninfo, "--maintenance-db", maintenance],
            environment: environment
        )
        #expect(copied.exitCode == 0, "\(copied)")
        #expect(try await app.server.markers(snapshot) == "new")
        try "maintenance_db: \(maintenance)\n".write(
            toFile: app.directory + "/pgclone.yaml",
            atomically: true,
            encoding: .utf8
        )
        let listed = try await app.run(["ls", "--local", "--database", conninfo], environment: environment)
        #expect(listed.exitCode == 0, "\(listed)")
        let names = listed.stdout.split(separator: "\n").map(String.init)
        #expect(names.contains(":\(target)") && names.contains(":\(snapshot)"), "\(listed)")
        #expect(!names.contains(":\(maintenance)") && !names.contains(":postgres"), "\(listed)")

        // One that refuses the role is one line with its origin and why; exit code 2.
        let revoked = TestEnvironment.uniqueName("md_admin_noconnect")
        try await server.createDatabase(revoked)
        try await server.psql("REVOKE CONNECT ON DATABASE \(quoteIdentifier(revoked)) FROM PUBLIC")
        let at = "connection to server at \"\(server.host)\", port \(server.port) failed: FATAL:"
        let denied = try await app.run(
            ["restore", key, "--database", conninfo, "--maintenance-db", revoked],
            environment: environment
        )
        #expect(denied.exitCode == 2, "\(denied)")
        #expect(
            denied.errorLines == [
                """
                pgclone: error: cannot connect to the maintenance database \"\(revoked)\" (--maintenance-db): \
                \(at) permission denied for database \"\(revoked)\"; name one the role may connect to
                """
            ],
            "\(denied)"
        )
        #expect(denied.stderrLines.contains("pgclone: detail: User does not have CONNECT privilege."), "\(denied)")
        let missing = TestEnvironment.uniqueName("md_admin_missing")
        fromEnvironment["PGCLONE_MAINTENANCE_DB"] = missing
        let absent = try await app.run(
            ["copy", ":\(TestEnvironment.uniqueName("md_never"))", "--database", conninfo],
            environment: fromEnvironment
        )
        #expect(absent.exitCode == 2, "\(absent)")
        #expect(
            absent.errorLines == [
                """
                pgclone: error: cannot connect to the maintenance database \"\(missing)\" \
                (PGCLONE_MAINTENANCE_DB): \(at) database \"\(missing)\" does not exist; name one the role may \
                connect to
                """
            ],
            "\(absent)"
        )

        // Never the database being restored into or copied, from any origin.
        let intoItself = try await app.run(
            ["restore", key, "--database", conninfo, "--maintenance-db", target],
            environment: environment
        )
        #expect(intoItself.exitCode == 2, "\(intoItself)")
        #expect(
            intoItself.errorLines == [
                """
                pgclone: error: the maintenance database \"\(target)\" (--maintenance-db) is the database being \
                restored into; name another one, such as postgres
                """
            ],
            "\(intoItself)"
        )
        try "maintenance_db: \(target)\n".write(
            toFile: app.directory + "/pgclone.yaml",
            atomically: true,
            encoding: .utf8
        )
        let copyOfItself = try await app.run(
            ["copy", ":\(TestEnvironment.uniqueName("md_never"))", "--database", conninfo],
            environment: environment
        )
        #expect(copyOfItself.exitCode == 2, "\(copyOfItself)")
        #expect(
            copyOfItself.errorLines == [
                """
                pgclone: error: the maintenance database \"\(target)\" (maintenance_db in pgclone.yaml) is the \
                database being copied; name another one, such as postgres
                """
            ],
            "\(copyOfItself)"
        )
        #expect(try await server.databases(startingWith: target) == [target])
        #expect(try await app.server.markers(target) == "new")
    }

    /// A password-file line for one database with a wrong password: every connection pgclone makes
    /// — the database to dump, the maintenance database, `D__temp` — names in its error line the
    /// database it was to (libpq's message does not).
    @Test func aRefusedPasswordNamesTheDatabaseItWasFor() async throws {
        let (server, app) = try await application()
        let (key, target) = try await app.targetAndDump("md_auth")
        let source = String(key.prefix { $0 != "/" })
        let file = try app.writePasswordFile(wrongFor: [source, "\(target)__temp", "postgres"])
        let environment: [String: String?] = ["PGPASSFILE": file.path]
        let refused = refusedPassword(app, file: file.path)

        let dumped = try await app.run(["dump", "--database", app.server.conninfo(source)], environment: environment)
        #expect(dumped.exitCode == 1, "\(dumped)")
        #expect(
            dumped.errorLines == ["pgclone: error: cannot connect to database \"\(source)\" to dump it: \(refused)"],
            "\(dumped)"
        )

        // postgres is passed over for template1; D__temp is refused before pg_restore starts, and dropped.
        let restored = try await app.run(
            ["restore", key, "--database", app.server.conninfo(target)],
            environment: environment
        )
        #expect(restored.exitCode == 1, "\(restored)")
        #expect(
            restored.errorLines == [
                """
                pgclone: error: cannot connect to database \"\(target)__temp\" to restore into it: \(refused); \
                \"\(target)\" is unchanged
                """
            ],
            "\(restored)"
        )
        #expect(try await server.databases(startingWith: target) == [target])
        #expect(try await app.server.markers(target) == "old")

        let listed = try await app.run(
            ["ls", "--local", "--maintenance-db", "postgres", "--database", app.server.conninfo(target)],
            environment: environment
        )
        #expect(listed.exitCode == 2, "\(listed)")
        #expect(
            listed.errorLines == [
                """
                pgclone: error: cannot connect to the maintenance database \"postgres\" (--maintenance-db): \
                \(refused); name one the role may connect to
                """
            ],
            "\(listed)"
        )
        for result in [dumped, restored, listed] {
            #expect(
                !result.stderr.contains(app.server.password) && !result.stderr.contains(file.wrongPassword),
                "\(result)"
            )
        }
    }

    /// The PGCloneError `body` throws, if it throws one.
    private func refusal(_ body: () async throws -> PostgresConnection) async -> PGCloneError? {
        do {
            let connection = try await body()
            let database = await connection.databaseName
            await connection.close()
            Issue.record("the connection was made to \(database)")
            return nil
        } catch let error as PGCloneError {
            return error
        } catch {
            Issue.record("not a PGCloneError: \(error)")
            return nil
        }
    }
}

extension PGCloneHarness {
    /// A password file (mode 0600, as libpq requires) for this harness's role: a wrong password
    /// for each of `databases`, the right one for every other database.
    func writePasswordFile(wrongFor databases: [String]) throws -> (path: String, wrongPassword: String) {
        let wrong = "wrong-\(UUID().uuidString.prefix(12))"
        let prefix = "\(server.host):\(server.port)"
        let lines =
            databases.map { "\(prefix):\($0):\(server.user):\(wrong)" } + [
                "\(prefix):*:\(server.user):\(server.password)"
            ]
        let path = directory + "/pgpass"
        guard
            FileManager.default.createFile(
                atPath: path,
                contents: Data((lines.joined(separator: "\n") + "\n").utf8),
                attributes: [.posixPermissions: 0o600]
            )
        else { throw TestSetupError("cannot write \(path)") }
        return (path, wrong)
    }
}
