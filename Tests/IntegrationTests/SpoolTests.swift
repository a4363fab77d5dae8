import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// `restore --jobs N` of a dump without an index of its pieces (an earlier build's): the archive
/// spooled to TMPDIR, restored by `pg_restore -j N`, and the spool file gone afterwards, whether
/// the restore succeeded, pg_restore failed or the dump was damaged. (Indexed dumps restore in
/// pieces: ``PieceRestoreTests``.)
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct SpoolTests {
    private func contents(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory)
    }

    @Test func parallelJobsRestoreEverythingAndLeaveNoFile() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("spool_src")
        let target = TestEnvironment.uniqueName("spool_dst")
        try await server.createDatabase(source)
        // Several tables and indexes, so that two jobs have work to share.
        try await server.psql(
            """
            CREATE TABLE a AS SELECT i, md5(i::text) AS h FROM generate_series(1, 60000) AS i;
            CREATE TABLE b AS SELECT i, repeat(md5(i::text), 3) AS h FROM generate_series(1, 40000) AS i;
            CREATE TABLE c (i int PRIMARY KEY, a_i int, payload bytea);
            INSERT INTO c SELECT i, i, decode(md5(i::text), 'hex') FROM generate_series(1, 20000) AS i;
            CREATE INDEX ON a (h); ALTER TABLE b ADD PRIMARY KEY (i);
            """,
            database: source
        )
        // A table whose rows load slowly (about 1.5 s): the jobs overlap for that long, which a
        // watcher polling on a loaded machine cannot miss.
        try await server.psql(Fixtures.slowRestoreSQL(rows: 1500, milliseconds: 4), database: source)
        let key = try await pgclone.dumpWithoutIndex(source)
        let spool = try pgclone.makeDirectory("spool")
        // What killed restores left (no process holds their lock), and one a running restore holds.
        let abandoned = ["pgclone-spool-999999-1.dump", "pgclone-spool-999999-1.dump.parallel.list"]
        for name in abandoned + ["pgclone-spool-1-2.dump"] {
            FileManager.default.createFile(atPath: "\(spool)/\(name)", contents: Data("x".utf8))
        }
        let held = open("\(spool)/pgclone-spool-1-2.dump", O_RDONLY)
        #expect(flock(held, LOCK_EX | LOCK_NB) == 0)
        defer { close(held) }
        // pg_restore's sessions on D__temp, counted while it runs: more than one at once is -j at work.
        let stop = StopFlag()
        let catalog = try await PostgresConnection.connect(
            ConnectionSettings(conninfo: server.url("postgres"), from: "test")
        )
        let watcher = Task { () -> Int in
            var most = 0
            while !stop.isSet {
                let rows = try await catalog.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pg_restore'",
                    [target + "__temp"]
                )
                most = max(most, Int(rows.first?.first.flatMap { $0 } ?? "0") ?? 0)
                try await Task.sleep(for: .milliseconds(5))
            }
            return most
        }
        let result = try await pgclone.restore(
            key,
            into: target,
            ["--jobs", "2", "--json"],
            environment: ["TMPDIR": spool]
        )
        stop.set()
        let sessions = try await watcher.value
        await catalog.close()
        #expect(result.exitCode == 0, "\(result)")
        #expect(result.stderr.contains("for pg_restore --jobs=2"), "\(result)")
        #expect(
            result.stderr.contains(
                """
                pgclone: restoring with --jobs through a file in TMPDIR, as pg_restore -j needs: \(key) has no index \
                of its pieces (dumps of earlier pgclone builds, django-pgclone's and pg_dump's have none)
                """
            ),
            "\(result)"
        )
        #expect(sessions >= 2, "pg_restore had at most \(sessions) session(s) at once")
        #expect(try await server.tableFingerprints(target) == server.tableFingerprints(source))
        #expect(
            try await server.psql("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'", database: target)
                == "3"
        )
        let json = try #require(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect((json["archive_bytes"] as? Int ?? 0) > 0, "\(result.stdout)")
        #expect(try contents(spool) == ["pgclone-spool-1-2.dump"])
        for name in abandoned {
            #expect(
                result.stderr.contains("pgclone: removed \(spool)/\(name), left by a restore --jobs that was killed"),
                "\(result)"
            )
        }
        #expect(try await server.databases(startingWith: target) == [target])
    }

    @Test func moreJobsThanTheServerAllowsAreCappedAndSaidSo() async throws {
        let server = try PostgresServer.shared
        // A role limited to 5 connections, as managed services limit them.
        let pgclone = try PGCloneHarness(
            server: try await server.createRole("app", attributes: "CREATEDB CONNECTION LIMIT 5")
        )
        let (key, target) = try await pgclone.targetAndDump("spool_cap")
        let result = try await pgclone.restore(key, into: target, ["--jobs", "100000"])
        #expect(result.exitCode == 0, "\(result)")
        #expect(
            result.stderr.contains(
                """
                pgclone: warning: --jobs 100000 is more than PostgreSQL lets this role open (4 more connections now); \
                restoring with --jobs=2
                """
            ),
            "\(result)"
        )
        #expect(try await pgclone.server.markers(target) == "new")
    }

    @Test func aFailingPgRestoreLeavesNoFileAndTheTargetAsItWas() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("spool_err_src")
        let target = TestEnvironment.uniqueName("spool_err_dst")
        let role = TestEnvironment.uniqueName("spool_gone")
        try await server.createDatabase(source)
        try await server.createDatabase(target)
        try await server.psql(
            "CREATE TABLE existing (v text); INSERT INTO existing VALUES ('untouched')",
            database: target
        )
        let fingerprint = try await server.tableFingerprints(target)
        try await server.psql(
            """
            CREATE ROLE \(role); CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2); CREATE POLICY p ON t TO \
            \(role) USING (true);
            """,
            database: source
        )
        let key = try await pgclone.dumpWithoutIndex(source)
        try await server.psql("DROP POLICY p ON t; DROP ROLE \(role);", database: source)
        let spool = try pgclone.makeDirectory("spool")

        let failed = try await pgclone.restore(key, into: target, ["-j", "2"], environment: ["TMPDIR": spool])
        #expect(failed.exitCode == 1, "\(failed)")
        #expect(
            failed.errorLines == [
                """
                pgclone: error: pg_restore reported 1 error (first: could not execute query: ERROR: role \
                \"\(role)\" does not exist); \"\(target)\" is unchanged
                """
            ],
            "\(failed)"
        )
        #expect(try contents(spool).isEmpty)
        #expect(try await server.tableFingerprints(target) == fingerprint)
        #expect(try await server.databases(startingWith: target) == [target])

        // A dump cut short fails while spooling, before pg_restore starts; the file goes too.
        let stored = try pgclone.storedData(key)
        let truncatedKey = key.replacingOccurrences(of: ".noindex.", with: ".cut.")
        try pgclone.store(stored.prefix(stored.count - 100), as: truncatedKey)
        let truncated = try await pgclone.restore(
            truncatedKey,
            into: target,
            ["-j", "2"],
            environment: ["TMPDIR": spool]
        )
        #expect(truncated.exitCode == 1, "\(truncated)")
        #expect(truncated.errorLines.first?.contains("is truncated") == true, "\(truncated)")
        #expect(try contents(spool).isEmpty)
        #expect(try await server.tableFingerprints(target) == fingerprint)
    }

    /// Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN, as on CI's machines): the
    /// only way to run a real filesystem out of space without filling a real disk.
    static func canMountTmpfs() async -> Bool {
        guard getuid() == 0, let directory = try? TestEnvironment.makeTemporaryDirectory("pgclone-mount-probe") else {
            return false
        }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        guard (try? await runCommand("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", directory]))?.exitCode == 0
        else { return false }
        _ = try? await runCommand("umount", [directory])
        return true
    }

    /// `body`'s result with a tmpfs mounted on `directory` (`options`: `size=2m`, `ro,size=1m`),
    /// unmounted after whatever happens (a defer cannot await).
    static func withTmpfs<T>(
        on directory: String,
        options: String,
        _ body: () async throws -> T
    ) async throws -> T {
        let mounted = try await runCommand("mount", ["-t", "tmpfs", "-o", options, "tmpfs", directory])
        try #require(mounted.exitCode == 0, "\(mounted)")
        let result: T
        do {
            result = try await body()
        } catch {
            _ = try? await runCommand("umount", [directory])
            throw error
        }
        _ = try await runCommand("umount", [directory])
        return result
    }

    @Test(.enabled("needs root to mount a small tmpfs") { await SpoolTests.canMountTmpfs() })
    func aTmpdirThatFillsUpMidwayLeavesNoFileAndNothingChanged() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("spool_full_src")
        let target = TestEnvironment.uniqueName("spool_full_dst")
        try await server.createDatabase(source)
        // About 16 MiB of archive that compresses several times over: the free-space check (room for
        // the stored dump) passes, and the disk fills while the archive is written.
        try await server.psql(
            "CREATE TABLE t AS SELECT i, repeat(md5((i % 1000)::text), 4) AS h FROM generate_series(1, 120000) AS i",
            database: source
        )
        let key = try await pgclone.dumpWithoutIndex(source)
        let stored = try pgclone.storedData(key).count
        let spool = try pgclone.makeDirectory("spool-full")
        let size = (stored >> 20) + 2
        let (result, left) = try await Self.withTmpfs(on: spool, options: "size=\(size)m") {
            let result = try await pgclone.restore(key, into: target, ["-j", "2"], environment: ["TMPDIR": spool])
            return (result, try contents(spool))
        }

        #expect(result.exitCode == 1, "\(result)")
        #expect(
            result.errorLines == [
                """
                pgclone: error: TMPDIR \(spool) ran out of space after \(size) MiB of the archive; --jobs needs \
                room for the whole archive: set TMPDIR to a larger disk, or restore without --jobs; \"\(target)\" \
                is unchanged
                """
            ],
            "\(result)"
        )
        #expect(left.isEmpty)
        #expect(try await server.databases(startingWith: target).isEmpty)
    }

    /// `restore -j 2`, with `tmpdir` as TMPDIR (made ready by `prepare`, around the restore), of a
    /// one-row dump without an index into a new database: its result and that database's name.
    static func spooledRestore(
        _ pgclone: PGCloneHarness,
        tmpdir: String,
        prepare: (() async throws -> CommandResult) async throws -> CommandResult = { try await $0() }
    ) async throws -> (result: CommandResult, target: String) {
        let source = TestEnvironment.uniqueName("spool_one_src")
        try await pgclone.server.createDatabase(source)
        try await pgclone.server.psql("CREATE TABLE t AS SELECT 1 AS v", database: source)
        let key = try await pgclone.dumpWithoutIndex(source)
        let target = TestEnvironment.uniqueName("spool_one_dst")
        let result = try await prepare {
            // `-j2`, as pg_restore takes it.
            try await pgclone.restore(key, into: target, ["-j2"], environment: ["TMPDIR": tmpdir])
        }
        return (result, target)
    }

    /// A read-only TMPDIR (a container's read-only root) is named as such, not by its free space.
    @Test(.enabled("needs root to mount a tmpfs") { await SpoolTests.canMountTmpfs() })
    func aReadOnlyTmpdirIsOneLineAndNothingChanged() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let spool = try pgclone.makeDirectory("spool-ro")
        let (result, target) = try await Self.spooledRestore(pgclone, tmpdir: spool) { restore in
            try await Self.withTmpfs(on: spool, options: "ro,size=1m", restore)
        }
        #expect(result.exitCode == 1, "\(result)")
        #expect(
            result.errorLines == [
                """
                pgclone: error: TMPDIR \(spool) is not writable, and --jobs spools the archive there: set TMPDIR \
                to a writable disk with room for the whole archive, or restore without --jobs; \"\(target)\" is \
                unchanged
                """
            ],
            "\(result)"
        )
        #expect(try await server.databases(startingWith: target).isEmpty)
    }

    @Test func aMissingTmpdirIsOneLineAndNothingChanged() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let (result, target) = try await Self.spooledRestore(pgclone, tmpdir: "/nonexistent-tmp")
        #expect(result.exitCode == 1, "\(result)")
        #expect(
            result.errorLines == [
                """
                pgclone: error: cannot use TMPDIR /nonexistent-tmp: No such file or directory; \"\(target)\" is \
                unchanged
                """
            ],
            "\(result)"
        )
        #expect(try await server.databases(startingWith: target).isEmpty)
    }
}
