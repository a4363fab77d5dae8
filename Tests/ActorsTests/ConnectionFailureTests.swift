import PGCloneActors
import Testing

/// What a failed connection's error says and whether its refusal is about the database (another
/// database may accept the same connection) or about the server or the role. The messages are
/// libpq 15's, as `PQerrorMessage` gives them against PostgreSQL 15.
@Suite struct ConnectionFailureTests {
    private static let server = "connection to server at \"127.0.0.1\", port 5432 failed: "

    struct Case: Sendable, CustomTestStringConvertible {
        var raw: String
        var usedPassword = true
        var explicitPassword = true
        var aboutDatabase: Bool
        var testDescription: String { raw.split(separator: "\n").first.map(String.init) ?? raw }
    }

    static let cases: [Case] = [
        // About the database: another one may accept the connection.
        Case(raw: server + "FATAL:  database \"postgres\" does not exist\n", aboutDatabase: true),
        Case(
            raw: server
                + """
                FATAL:  permission denied for database \"postgres\"\nDETAIL:  User does not have CONNECT \
                privilege.\n
                """,
            aboutDatabase: true
        ),
        Case(
            raw: server + "FATAL:  database \"postgres\" is not currently accepting connections\n",
            aboutDatabase: true
        ),
        Case(raw: server + "FATAL:  too many connections for database \"postgres\"\n", aboutDatabase: true),
        Case(
            raw: server + """
                FATAL:  pg_hba.conf rejects connection for host \"127.0.0.1\", user \"app\", database \"postgres\", \
                no encryption\n
                """,
            usedPassword: false,
            aboutDatabase: true
        ),
        Case(
            raw: server + """
                FATAL:  no pg_hba.conf entry for host \"127.0.0.1\", user \"app\", database \"postgres\", no \
                encryption\n
                """,
            usedPassword: false,
            aboutDatabase: true
        ),
        // A password from the password file, whose lines may differ by database.
        Case(
            raw: server + """
                FATAL:  password authentication failed for user \"app\"\npassword retrieved from file \
                \"/home/app/.pgpass\"\n
                """,
            explicitPassword: false,
            aboutDatabase: true
        ),
        Case(raw: server + "fe_sendauth: no password supplied\n", explicitPassword: false, aboutDatabase: true),
        // A pg_hba.conf line for this database with another method.
        Case(
            raw: server + "FATAL:  Ident authentication failed for user \"app\"\n",
            usedPassword: false,
            explicitPassword: false,
            aboutDatabase: true
        ),
        // A server that writes German or French: the database named in its quotes (a helper found
        // `template1` not tried after a German server's refusal of `postgres`).
        Case(raw: server + "FATAL:  Datenbank »postgres« existiert nicht\n", aboutDatabase: true),
        Case(raw: server + "FATAL:  la base de données « postgres » n'existe pas\n", aboutDatabase: true),
        // About the server or the role: the same for every database.
        Case(
            raw: server + "FATAL:  Passwort-Authentifizierung für Benutzer »app« fehlgeschlagen\n",
            aboutDatabase: false
        ),
        Case(raw: server + "FATAL:  password authentication failed for user \"app\"\n", aboutDatabase: false),
        Case(raw: server + "FATAL:  role \"app\" is not permitted to log in\n", aboutDatabase: false),
        Case(raw: server + "FATAL:  role \"ghost\" does not exist\n", usedPassword: false, aboutDatabase: false),
        Case(
            raw: server + "FATAL:  too many connections for role \"app\"\n",
            explicitPassword: false,
            aboutDatabase: false
        ),
        Case(raw: server + "FATAL:  sorry, too many clients already\n", usedPassword: false, aboutDatabase: false),
        Case(
            raw: server + "FATAL:  remaining connection slots are reserved for non-replication superuser connections\n",
            explicitPassword: false,
            aboutDatabase: false
        ),
        Case(raw: server + "FATAL:  the database system is starting up\n", usedPassword: false, aboutDatabase: false),
        Case(
            raw: """
                connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running on \
                that host and accepting TCP/IP connections?\n
                """,
            usedPassword: false,
            explicitPassword: false,
            aboutDatabase: false
        ),
        Case(
            raw: "could not translate host name \"db.invalid\" to address: Name or service not known\n",
            usedPassword: false,
            aboutDatabase: false
        ),
    ]

    @Test(arguments: cases)
    func theRefusalIsClassified(_ example: Case) throws {
        let error = LibPQError.connectionFailed(
            example.raw,
            database: "postgres",
            usedPassword: example.usedPassword,
            explicitPassword: example.explicitPassword
        )
        let failure = try #require(error.connectionFailure)
        #expect(failure.aboutDatabase == example.aboutDatabase)
        #expect(failure.database == "postgres")
        #expect(error.message.hasPrefix("cannot connect to database \"postgres\": "))
    }

    @Test func theMessageIsOneLineAndTheServersDetailIsItsOwn() throws {
        let denied = LibPQError.connectionFailed(
            Self.server
                + "FATAL:  permission denied for database \"shop\"\nDETAIL:  User does not have CONNECT privilege.\n",
            database: "shop",
            usedPassword: true,
            explicitPassword: true
        )
        #expect(
            denied.message == """
                cannot connect to database \"shop\": connection to server at \"127.0.0.1\", port 5432 failed: FATAL: \
                permission denied for database \"shop\"
                """
        )
        #expect(denied.detail == "User does not have CONNECT privilege.")
        #expect(denied.sqlState == nil)

        let file = LibPQError.connectionFailed(
            Self.server + """
                FATAL:  password authentication failed for user \"app\"\npassword retrieved from file \
                \"/home/app/.pgpass\"\n
                """,
            database: "shop__temp",
            usedPassword: true,
            explicitPassword: false
        )
        #expect(
            file.connectionFailure?.reason
                == """
                connection to server at \"127.0.0.1\", port 5432 failed: FATAL: password authentication failed \
                for user \"app\"; password retrieved from file \"/home/app/.pgpass\"
                """
        )
        #expect(file.detail == nil)

        let refused = LibPQError.connectionFailed(
            """
            connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running on \
            that host and accepting TCP/IP connections?\n
            """,
            database: "shop",
            usedPassword: false,
            explicitPassword: false
        )
        #expect(
            refused.connectionFailure?.reason
                == """
                connection to server at \"127.0.0.1\", port 1 failed: Connection refused; Is the server running \
                on that host and accepting TCP/IP connections?
                """
        )

        let missing = LibPQError.connectionFailed(
            Self.server + "FATAL:  database \"shop\" does not exist\n",
            database: "shop",
            usedPassword: true,
            explicitPassword: true
        )
        #expect(missing.isInvalidCatalogName)
        #expect(!missing.connectionLost)
    }

    @Test func aNamedMaintenanceDatabaseIsTheOnlyCandidateAndNeverTheOneWorkedOn() {
        #expect(MaintenanceDatabase.standard.candidates == ["postgres", "template1"])
        #expect(MaintenanceDatabase.standard.protected == ["postgres", "template1"])
        let named = MaintenanceDatabase.named("admin", origin: "--maintenance-db")
        #expect(named.candidates == ["admin"])
        #expect(named.protected == ["postgres", "template1", "admin"])
        #expect(throws: Never.self) { try named.checkNotAmong([("shop", "the database being restored into")]) }
        #expect(throws: Never.self) {
            try MaintenanceDatabase.standard.checkNotAmong([("postgres", "the database being copied")])
        }
        do {
            try named.checkNotAmong([("shop", "the database being copied"), ("admin", "the name of the copy")])
            Issue.record("a maintenance database that is the copy's name was accepted")
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(
                error.message == """
                    the maintenance database \"admin\" (--maintenance-db) is the name of the copy; name another one, \
                    such \
                    as postgres
                    """
            )
        }
    }

    /// A session the server ended: libpq's message is two messages, the second on two lines.
    @Test func libpqsMessageOfALostSessionReadsAsSentences() {
        let raw = """
            FATAL:  terminating connection due to administrator command
            server closed the connection unexpectedly
            \tThis probably means the server terminated abnormally
            \tbefore or while processing the request.

            """
        #expect(
            LibPQError.oneLine(raw) == """
                FATAL: terminating connection due to administrator command; server closed the connection \
                unexpectedly. This probably means the server terminated abnormally before or while processing the \
                request.
                """
        )
    }
}
