import PGCloneActors
import Testing

@Suite struct PostgresToolsTests {
    static let found = PostgresInstallations(installations: [
        .init(directory: "/usr/lib/postgresql/15/bin", major: 15),
        .init(directory: "/usr/lib/postgresql/17/bin", major: 17),
        .init(directory: "/opt/pg18/bin", major: 18),
    ])

    @Test func pgDumpIsOfTheServersVersionOrTheOldestNewerOne() throws {
        #expect(try Self.found.forDump(serverVersion: 150_018, serverVersionText: "15.18").major == 15)
        #expect(try Self.found.forDump(serverVersion: 160_004, serverVersionText: "16.4").major == 17)
        #expect(throws: PGCloneError.self) { try Self.found.forDump(serverVersion: 190_000, serverVersionText: "19.0") }
        var explicit = Self.found
        explicit.explicitDirectory = "/opt/pg18/bin"
        #expect(try explicit.forDump(serverVersion: 150_018, serverVersionText: "15.18").major == 18)
        // Said, but too old for the server: another that fits.
        #expect(
            try explicit.forDump(serverVersion: 180_001, serverVersionText: "18.1").pgDump == "/opt/pg18/bin/pg_dump"
        )
    }

    @Test func pgRestoreReadsTheArchiveAndPrefersTheServersVersion() throws {
        let v116 = ArchiveVersion(major: 1, minor: 16)
        #expect(v116.minimumReaderMajor == 17)
        #expect(try Self.found.forRestore(archive: v116, serverMajor: 15).major == 17)
        #expect(try Self.found.forRestore(archive: v116, serverMajor: 18).major == 18)
        #expect(try Self.found.forRestore(archive: ArchiveVersion(major: 1, minor: 14), serverMajor: 15).major == 15)
        #expect(try Self.found.forRestore(archive: nil, serverMajor: 17).major == 17)
        // A version pgclone does not know yet: the newest, which says if it cannot.
        #expect(try Self.found.forRestore(archive: ArchiveVersion(major: 1, minor: 17), serverMajor: 15).major == 18)
        let onlyOld = PostgresInstallations(installations: [.init(directory: "/usr/lib/postgresql/15/bin", major: 15)])
        #expect(throws: PGCloneError.self) { try onlyOld.forRestore(archive: v116, serverMajor: 15) }
        #expect(ArchiveVersion(header: Array("PGDMP".utf8) + [1, 15, 0]) == ArchiveVersion(major: 1, minor: 15))
        #expect(ArchiveVersion(header: Array("PGDMX".utf8) + [1, 15, 0]) == nil)
    }

    @Test func onlyKnownHarmlessErrorsAreHarmless() {
        let timeout = ChildStderr.Entry(
            message: "could not execute query: ERROR:  unrecognized configuration parameter \"transaction_timeout\"",
            statement: "SET transaction_timeout = 0;"
        )
        #expect(KnownRestoreErrors.harmless(timeout) != nil)
        let comment = ChildStderr.Entry(
            message: "could not execute query: ERROR:  must be owner of extension plpgsql",
            statement: "COMMENT ON EXTENSION plpgsql IS 'PL/pgSQL procedural language';"
        )
        #expect(KnownRestoreErrors.harmless(comment) != nil)
        // The same words from another statement are not.
        #expect(
            KnownRestoreErrors.harmless(.init(message: timeout.message, statement: "SET statement_timeout = 0;")) == nil
        )
        #expect(
            KnownRestoreErrors.harmless(.init(message: comment.message, statement: "ALTER EXTENSION plpgsql UPDATE;"))
                == nil
        )
        #expect(
            KnownRestoreErrors.harmless(
                .init(
                    message: "could not execute query: ERROR:  relation \"t\" already exists",
                    statement: "CREATE TABLE t ();"
                )
            ) == nil
        )
        let superuser = ChildStderr.Entry(
            message: "could not execute query: ERROR:  permission denied to create extension \"pg_stat_statements\"",
            hint: "Must be superuser to create this extension.",
            statement: "CREATE EXTENSION IF NOT EXISTS pg_stat_statements WITH SCHEMA public;"
        )
        #expect(KnownRestoreErrors.extensionNeedingSuperuser(superuser) == "pg_stat_statements")
        #expect(KnownRestoreErrors.extensionNeedingSuperuser(timeout) == nil)
        // A trusted extension, which the role may create with CREATE on the database (a helper
        // was told only a superuser may).
        var trusted = superuser
        trusted.hint = "Must have CREATE privilege on current database to create this extension."
        #expect(KnownRestoreErrors.extensionNeedingSuperuser(trusted) == nil)
    }
}
