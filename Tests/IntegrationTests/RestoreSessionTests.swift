import PGCloneStreams
import PGCloneTestSupport
import Testing

/// The restore's sessions (pg_restore's, and pgclone's COPY sessions of a restore in pieces) commit
/// without waiting for the disk (`synchronous_commit = off`: the swap's own commit flushes their WAL
/// before `D` is replaced), and keep the session options the user gave.
@Suite(.serialized, .enabled(if: TestEnvironment.hasPostgres, "needs PostgreSQL (scripts/test.sh)"))
struct RestoreSessionTests {
    @Test(arguments: [[], ["--jobs", "2"]])
    func pgRestoresSessionsDoNotWaitForTheDisk(extra: [String]) async throws {
        let pgclone = try PGCloneHarness()
        let source = TestEnvironment.uniqueName("syncoff")
        try await pgclone.server.createDatabase(source)
        // A CHECK whose function records the settings of the session that loads the table.
        try await pgclone.server.psql(
            """
            CREATE TABLE seen (synchronous_commit text, work_mem text, via text);
            CREATE FUNCTION record_settings() RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO public.seen VALUES (current_setting('synchronous_commit'), current_setting('work_mem'),
                    current_setting('application_name'));
                RETURN true;
            END $$;
            CREATE TABLE probe (x int CHECK (record_settings()));
            INSERT INTO probe VALUES (1);
            """,
            database: source
        )
        // Without seen's data in the dump: pg_restore -j empties a table it loads (TRUNCATE before
        // COPY), which could remove the row probe's CHECK has just added.
        let dumped = try await pgclone.run([
            "dump", "--database", pgclone.server.url(source), "--exclude-table-data", "public.seen",
        ])
        #expect(dumped.exitCode == 0, "\(dumped)")
        let key = dumped.stdout.trimmingWhitespace()
        let target = TestEnvironment.uniqueName("syncoff_dst")
        let restored = try await pgclone.restore(
            key,
            into: target,
            extra,
            environment: ["PGOPTIONS": "-c work_mem=7MB"]
        )
        #expect(restored.exitCode == 0, "\(restored)")
        // With --jobs, the dump is restored in pieces: pgclone's own sessions load the data.
        let seen = try await pgclone.server.psql("SELECT * FROM seen", database: target)
        #expect(extra.isEmpty ? seen == "off|7MB|pg_restore" : seen.hasPrefix("off|7MB|pgclone["), "\(seen)")
        try await pgclone.server.dropDatabase(target)
        try await pgclone.server.dropDatabase(source)
    }
}
