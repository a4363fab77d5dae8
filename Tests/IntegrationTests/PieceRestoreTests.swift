import Foundation
import PGCloneActors
import PGCloneStreams
import PGCloneTestSupport
import Testing

/// `restore --jobs N` of an indexed dump: restored in pieces, with N COPY sessions reading them
/// from storage, nothing written to TMPDIR, and the same database as a restore in one stream.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct PieceRestoreTests {
    /// The integration suite's edge cases in one database, made by `server`'s role: a table large
    /// enough for several pieces (identity and generated columns), a partitioned table, a
    /// sequence, large objects (one larger than a piece), rows that look like COPY's end marker,
    /// unusual names, an empty table, foreign keys, a trigger that must not fire during the load,
    /// a materialized view, and privileges granted and revoked.
    static func createEdgeCases(_ name: String, on server: PostgresServer) async throws {
        try await server.createDatabase(name)
        try await server.psql(
            #"""
            CREATE SCHEMA "Odd ""Schema""";
            CREATE TABLE "Odd ""Schema"""."Big Table" (
                id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text NOT NULL,
                n int GENERATED ALWAYS AS (length(v)) STORED
            );
            INSERT INTO "Odd ""Schema"""."Big Table" (v)
                SELECT repeat(md5(i::text), 1 + i % 7) FROM generate_series(1, 60000) AS i;
            CREATE TABLE audit (id serial PRIMARY KEY, what text);
            CREATE FUNCTION audit_insert() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN INSERT INTO audit (what) VALUES ('row ' || NEW.id); RETURN NEW; END $$;
            CREATE TABLE child (
                id int PRIMARY KEY, big_id int REFERENCES "Odd ""Schema"""."Big Table" (id), note text
            );
            INSERT INTO child SELECT i, i, CASE i % 5 WHEN 0 THEN NULL WHEN 1 THEN E'tab\there' WHEN 2 THEN
                E'new\nline' WHEN 3 THEN E'back\\slash' ELSE '\.' END FROM generate_series(1, 3000) AS i;
            INSERT INTO child VALUES (3001, NULL, E'\\.\n'), (3002, NULL, 'ünïcødé ✓');
            CREATE TRIGGER child_audit AFTER INSERT ON child FOR EACH ROW EXECUTE FUNCTION audit_insert();
            CREATE TABLE events (id int, kind text, at date) PARTITION BY LIST (kind);
            CREATE TABLE events_a PARTITION OF events FOR VALUES IN ('a');
            CREATE TABLE events_rest PARTITION OF events DEFAULT;
            INSERT INTO events SELECT i, (ARRAY['a', 'b', 'c'])[1 + i % 3], date '2024-01-01' + i % 365
                FROM generate_series(1, 30000) AS i;
            CREATE INDEX ON events (at);
            CREATE SEQUENCE tickets START 100;
            SELECT setval('tickets', 4242);
            CREATE TABLE empty_one (a int UNIQUE);
            CREATE MATERIALIZED VIEW kinds AS SELECT kind, count(*) AS n FROM events GROUP BY kind;
            SELECT lo_from_bytea(0, convert_to('a small large object', 'UTF8'));
            SELECT lo_from_bytea(0, decode(repeat(md5('x'), 400000), 'hex'));
            REVOKE ALL ON TABLE audit FROM PUBLIC;
            GRANT SELECT ON events TO PUBLIC;
            REVOKE EXECUTE ON FUNCTION audit_insert() FROM PUBLIC;
            """#,
            database: name
        )
    }

    /// What must be the same in two restores: each table's rows, the schema, sequence values,
    /// large objects and their owners and privileges.
    static func state(_ database: String, on server: PostgresServer) async throws -> [String] {
        [
            "\(try await server.tableFingerprints(database).sorted { $0.key < $1.key })",
            try await server.schemaDump(database),
            try await server.psql(
                """
                SELECT string_agg(format('%s=%s', c.relname, s.last_value), ',' ORDER BY c.relname)
                FROM pg_sequences AS s JOIN pg_class AS c ON c.relname = s.sequencename
                """,
                database: database
            ),
            try await server.psql(
                """
                SELECT string_agg(format('%s %s %s %s', oid, lomowner::regrole, lomacl, md5(lo_get(oid))), ','
                    ORDER BY oid) FROM pg_largeobject_metadata
                """,
                database: database
            ),
        ]
    }

    @Test(arguments: PostgresServer.all, TestRole.allCases)
    func aRestoreInPiecesIsTheSameAsOneStreamAndWritesNothingToTmpdir(
        server: PostgresServer,
        role: TestRole
    ) async throws {
        let user = try await role.user(on: server)
        let pgclone = try PGCloneHarness(server: user)
        let source = TestEnvironment.uniqueName("pieces_src")
        let streamed = TestEnvironment.uniqueName("pieces_one")
        let pieces = TestEnvironment.uniqueName("pieces_four")
        try await Self.createEdgeCases(source, on: user)
        let key = try await pgclone.dump(source)

        let one = try await pgclone.restore(key, into: streamed)
        #expect(one.exitCode == 0, "\(one)")
        // A TMPDIR that does not exist: the spool mode fails at once there (SpoolTests).
        let four = try await pgclone.restore(
            key,
            into: pieces,
            ["--jobs", "4", "--json", "--log-level", "debug"],
            environment: ["TMPDIR": "/nonexistent-tmp"]
        )
        #expect(four.exitCode == 0, "\(four)")
        #expect(four.errorLines.isEmpty, "\(four)")
        // The big table is several pieces; six tables (the partitioned one has none) have data.
        let line = try #require(four.stderrLines.first { $0.hasPrefix("pgclone: restoring in ") }, "\(four)")
        let counts = line.split(separator: " ").compactMap { Int($0) }
        #expect(counts.count == 3 && counts[0] > counts[1] && counts[1] == 6 && counts[2] == 4, "\(line)")
        // Each COPY session's share (pgclone_restore_worker_*, in the run summary): four
        // sessions, which sent every piece between them.
        let workers = four.stderrLines.filter { $0.hasPrefix("pgclone: debug: worker ") }
        let sent = workers.compactMap { Int($0.split(separator: " ")[4]) }
        #expect(workers.count == 4 && sent.count == 4 && sent.reduce(0, +) == counts[0], "\(workers)")
        let json = try #require(JSONSerialization.jsonObject(with: Data(four.stdout.utf8)) as? [String: Any])
        let phases = try #require(json["phases"] as? [String: Double], "\(four.stdout)")
        for phase in ["create_temporary", "restore_schema", "restore_data", "restore_indexes", "restore_constraints"] {
            #expect(phases[phase] != nil, "\(phase) in \(phases)")
        }
        // The run's summary says it too, in the protocol's order.
        let summary = try #require(four.stderrLines.first { $0.hasPrefix("pgclone: time by phase: ") }, "\(four)")
        #expect(summary.contains(", create_temporary "), "\(summary)")
        #expect(summary.contains(", restore_schema ") && summary.contains(", restore_data "), "\(summary)")
        #expect(
            summary.range(of: "restore_indexes")!.lowerBound < summary.range(of: ", swap ")!.lowerBound,
            "\(summary)"
        )

        let expected = try await Self.state(streamed, on: server)
        #expect(try await Self.state(pieces, on: server) == expected)
        #expect(try await server.tableFingerprints(pieces) == server.tableFingerprints(source))
        // The trigger was made after the data, as pg_restore makes it.
        #expect(try await server.psql("SELECT count(*) FROM audit", database: pieces) == "0")
        #expect(try await server.databases(startingWith: pieces) == [pieces])
    }

    @Test func theRoundTripDatabaseRestoresInPiecesAsInOneStream() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("pieces_rt_src")
        let streamed = TestEnvironment.uniqueName("pieces_rt_one")
        let pieces = TestEnvironment.uniqueName("pieces_rt_four")
        try await RoundTripTests.createRichDatabase(source, on: server)
        let key = try await pgclone.dump(source)
        let one = try await pgclone.restore(key, into: streamed)
        #expect(one.exitCode == 0, "\(one)")
        let four = try await pgclone.restore(key, into: pieces, ["--jobs", "4"])
        #expect(four.exitCode == 0, "\(four)")
        #expect(four.stderr.contains("pgclone: restoring in "), "\(four)")
        #expect(try await Self.state(pieces, on: server) == Self.state(streamed, on: server))
        #expect(try await server.psql("SHOW search_path", database: pieces) == "app, public")
        // The trigger on customers did not fire for the rows loaded: audit.log is the source's.
        #expect(try await server.tableFingerprints(pieces) == server.tableFingerprints(source))
    }

    /// Names in a database that is not UTF-8 go to the server as the archive has them.
    /// Sessions loading pieces of one table at once interleave its pages. A table with an index
    /// that wants its rows' order (BRIN, whose block ranges summarise neighbouring rows; or the
    /// one it is clustered on) is loaded by one session, piece after piece, as in one stream.
    @Test func tablesWithABRINIndexOrClusteredKeepTheirRowsOrder() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("pieces_order_src")
        let pieces = TestEnvironment.uniqueName("pieces_order_four")
        try await server.createDatabase(source)
        // About 13 MB of rows each: four pieces.
        try await server.psql(
            """
            CREATE TABLE logged (id int, at timestamptz, v text);
            INSERT INTO logged SELECT i, timestamptz '2026-01-01' + i * interval '1 s', md5(i::text)
                FROM generate_series(1, 200000) AS i;
            CREATE INDEX logged_at ON logged USING brin (at);
            CREATE TABLE "Clustered" (id int PRIMARY KEY, v text, w text);
            INSERT INTO "Clustered" SELECT i, md5(i::text), md5((-i)::text) FROM generate_series(1, 200000) AS i;
            ALTER TABLE "Clustered" CLUSTER ON "Clustered_pkey";
            CREATE TABLE plain (id int, v text, w text);
            INSERT INTO plain SELECT i, md5(i::text), md5((-i)::text) FROM generate_series(1, 200000) AS i;
            """,
            database: source
        )
        let key = try await pgclone.dump(source)
        let four = try await pgclone.restore(key, into: pieces, ["--jobs", "4"])
        #expect(four.exitCode == 0, "\(four)")
        #expect(
            four.stderrLines.contains(
                """
                pgclone: loading \"public\".\"Clustered\", \"public\".\"logged\" in one session each, the rows in \
                their dumped order (a BRIN index or CLUSTER ON wants it)
                """
            ),
            "\(four)"
        )
        func order(_ table: String, _ database: String) async throws -> String {
            try await server.psql(
                "SELECT md5(string_agg(id::text, ',' ORDER BY ctid)) FROM \(table)",
                database: database
            )
        }
        for table in ["logged", #""Clustered""#] {
            #expect(try await order(table, pieces) == order(table, source), "\(table)'s rows are out of order")
        }
        #expect(try await server.tableFingerprints(pieces) == server.tableFingerprints(source))
    }

    @Test func aLatin1DatabaseWithNonASCIINamesRestoresInPieces() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("pieces_latin1_src")
        try await server.psql(
            """
            CREATE DATABASE \(quoteIdentifier(source)) ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' \
            LC_CTYPE 'C'
            """
        )
        try await server.psql(
            """
            SET client_encoding = 'UTF8';
            CREATE SCHEMA "schéma";
            CREATE TABLE "schéma"."tàble ñ" ("cöl" text, n int);
            INSERT INTO "schéma"."tàble ñ" SELECT 'café ñ ü ß ' || i, i FROM generate_series(1, 150000) AS i;
            """,
            database: source
        )
        let key = try await pgclone.dump(source)
        let one = TestEnvironment.uniqueName("pieces_latin1_one")
        let four = TestEnvironment.uniqueName("pieces_latin1_four")
        #expect(try await pgclone.restore(key, into: one).exitCode == 0)
        let restored = try await pgclone.restore(key, into: four, ["--jobs", "4"])
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(restored.stderr.contains("pgclone: restoring in "), "\(restored)")
        #expect(try await Self.state(four, on: server) == Self.state(one, on: server))
        #expect(try await server.tableFingerprints(four) == server.tableFingerprints(source))
        #expect(
            try await server.psql(
                #"SET client_encoding = 'UTF8'; SELECT "cöl" FROM "schéma"."tàble ñ" WHERE n = 7"#,
                database: four
            ) == "café ñ ü ß 7"
        )
    }

    /// The object's start is read with its end, a first guess of its length (256 KiB): a table of
    /// contents longer than that is read again, whole, and the restore is still in pieces.
    @Test func aTableOfContentsLongerThanTheFirstReadRestoresInPieces() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("pieces_longtoc")
        let target = TestEnvironment.uniqueName("pieces_longtoc_dst")
        try await server.createDatabase(source)
        // A comment of 960 KB of hex digests: compressed, still longer than the guess.
        try await server.psql(
            """
            CREATE TABLE t AS SELECT i, md5(i::text) AS h FROM generate_series(1, 20000) AS i;
            DO $$ BEGIN EXECUTE format('COMMENT ON TABLE t IS %L',
                (SELECT string_agg(md5(i::text || 'x'), '') FROM generate_series(1, 30000) AS i)); END $$;
            """,
            database: source
        )
        let key = try await pgclone.dump(source)
        let stored = [UInt8](try pgclone.storedData(key))
        let index = try #require(try ArchiveIndexTests.index(of: stored))
        #expect(index.ranges(of: 0).stored.upperBound > 256 << 10, "the table of contents is longer than the guess")
        let restored = try await pgclone.restore(
            key,
            into: target,
            ["--jobs", "2"],
            environment: ["TMPDIR": "/nonexistent-tmp"]
        )
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(restored.stderr.contains("pgclone: restoring in "), "\(restored)")
        #expect(try await server.tableFingerprints(target) == server.tableFingerprints(source))
        let comment = "SELECT md5(obj_description('t'::regclass, 'pg_class'))"
        #expect(try await server.psql(comment, database: target) == server.psql(comment, database: source))
    }

    @Test func aDamagedIndexFallsBackToTheSpoolSayingWhy() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("pieces_damaged")
        var stored = try pgclone.storedData(key)
        // A key of the index's JSON misspelt: the trailer is whole, the JSON no index.
        let field = try #require(stored.range(of: Data("\"pieceSize\"".utf8)))
        stored.replaceSubrange(field, with: Data("\"pieceSizf\"".utf8))
        let damaged = key.replacingOccurrences(of: ".default.", with: ".damaged.")
        try pgclone.store(stored, as: damaged)
        let spool = try pgclone.makeDirectory("spool")
        let result = try await pgclone.restore(damaged, into: target, ["--jobs", "2"], environment: ["TMPDIR": spool])
        #expect(result.exitCode == 0, "\(result)")
        #expect(
            result.stderr.contains(
                """
                pgclone: restoring with --jobs through a file in TMPDIR, as pg_restore -j needs: \(damaged) has a \
                damaged index (its JSON does not read as an index)
                """
            ),
            "\(result)"
        )
        #expect(try await pgclone.server.markers(target) == "new")
    }

    /// Restores, with `--jobs 2`, the dump `targetAndDump(prefix)` makes with its index changed by
    /// `change`, and expects the fallback to the spool, saying the index `does` what it does.
    private func expectSpoolFallback(
        _ prefix: String,
        does: String,
        index change: (inout ArchiveIndex) throws -> Void
    ) async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump(prefix)
        let unindexed = try pgclone.storeWithoutIndex(key)
        var index = try #require(try ArchiveIndexTests.index(of: [UInt8](pgclone.storedData(key))))
        try change(&index)
        let misstated = key.replacingOccurrences(of: ".default.", with: ".misstated.")
        try pgclone.store(try pgclone.storedData(unindexed) + index.skippableFrame(), as: misstated)
        let spool = try pgclone.makeDirectory("spool")
        let result = try await pgclone.restore(
            misstated,
            into: target,
            ["--jobs", "2"],
            environment: ["TMPDIR": spool]
        )
        #expect(result.exitCode == 0, "\(result)")
        #expect(
            result.stderr.contains(
                """
                pgclone: restoring with --jobs through a file in TMPDIR, as pg_restore -j needs: \(misstated) has an \
                index that \(does)
                """
            ),
            "\(result)"
        )
        #expect(try await pgclone.server.markers(target) == "new")
    }

    /// An index that says the table of contents is shorter or longer than its frame decompresses
    /// to (the later frames' archive offsets shifted with it, so that it is in order): the restore
    /// stops decompressing at the length it was told, or finds it short, and spools instead.
    @Test(arguments: [-20, 20])
    func anIndexMisstatingTheTableOfContentsFallsBackToTheSpool(shift: Int) async throws {
        try await expectSpoolFallback("pieces_toclen", does: "does not match its table of contents") { index in
            for number in index.frames.indices.dropFirst() { index.frames[number].archive += shift }
            index.archiveBytes += shift
        }
    }

    /// An index whose second frame starts 20 bytes early, cutting the table of contents' frame
    /// short: the object is whole, the index wrong, so the restore spools instead (it said the
    /// dump was truncated).
    @Test func anIndexCuttingTheTableOfContentsShortFallsBackToTheSpool() async throws {
        try await expectSpoolFallback(
            "pieces_tocend",
            does: "does not match its table of contents (it ends the frame in the middle of one)"
        ) { index in
            try #require(index.frames.count > 1)
            index.frames[1].stored -= 20
        }
    }

    /// The table of contents' frame is decompressed into a file in memory as its entries are
    /// read: corrupt, the restore fails in one line before anything is restored.
    @Test func aCorruptTableOfContentsFailsTheRestoreInPiecesAndChangesNothing() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("pieces_badtoc")
        var stored = try pgclone.storedData(key)
        let index = try #require(try ArchiveIndexTests.index(of: [UInt8](stored)))
        let frame = index.ranges(of: 0).stored
        stored[stored.startIndex + (frame.lowerBound + frame.upperBound) / 2] ^= 0xFF
        let corruptKey = key.replacingOccurrences(of: ".default.", with: ".corrupt.")
        try pgclone.store(stored, as: corruptKey)

        let result = try await pgclone.restore(corruptKey, into: target, ["--jobs", "2"])
        #expect(result.exitCode == 1, "\(result)")
        #expect(result.errorLines.count == 1, "\(result)")
        let error = try #require(result.errorLines.first)
        #expect(error.hasPrefix("pgclone: error: the dump \(corruptKey) is corrupt ("), "\(error)")
        #expect(error.hasSuffix("\"\(target)\" is unchanged"), "\(error)")
        #expect(try await pgclone.server.markers(target) == "old")
        #expect(try await pgclone.server.databases(startingWith: target) == [target])
    }

    /// A table of contents' frame whose header asks for a window of 2 TiB: damaged, since pgclone
    /// writes 1 MiB windows, not a reason to raise --memory-limit.
    @Test func aDamagedFrameHeaderIsCorruptNotAMemoryLimit() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("pieces_window")
        var stored = try pgclone.storedData(key)
        let index = try #require(try ArchiveIndexTests.index(of: [UInt8](stored)))
        let frame = stored.startIndex + index.ranges(of: 0).stored.lowerBound
        // Frame_Header_Descriptor after the magic number: without Single_Segment_flag, the
        // Window_Descriptor follows it.
        try #require(stored[frame + 4] & 0x20 == 0, "a single-segment frame has no window descriptor")
        stored[frame + 5] = 0xF8
        let damaged = key.replacingOccurrences(of: ".default.", with: ".window.")
        try pgclone.store(stored, as: damaged)

        let result = try await pgclone.restore(damaged, into: target, ["--jobs", "2"])
        #expect(result.exitCode == 1, "\(result)")
        #expect(
            result.errorLines == [
                """
                pgclone: error: the dump \(damaged) is corrupt (a zstd frame's header asks for a larger window than \
                pgclone writes); "\(target)" is unchanged
                """
            ],
            "\(result)"
        )
        #expect(try await pgclone.server.databases(startingWith: target) == [target])
    }

    @Test func aCorruptPieceFailsNamingItsTableAndChangesNothing() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("pieces_bad_src")
        let (_, target) = try await pgclone.targetAndDump("pieces_bad")
        try await server.createDatabase(source)
        try await server.psql(
            "CREATE TABLE t AS SELECT i, md5(i::text) AS h FROM generate_series(1, 200000) AS i",
            database: source
        )
        let key = try await pgclone.dump(source)
        var stored = try pgclone.storedData(key)
        // The index: its frames, and which one is the second piece of t's data (not the last frame).
        let jsonLength = stored.suffix(12).prefix(4).reversed().reduce(0) { $0 << 8 | Int($1) }
        let index = try #require(
            JSONSerialization.jsonObject(with: stored.suffix(12 + jsonLength).prefix(jsonLength)) as? [String: Any]
        )
        let frames = try #require(index["frames"] as? [[String: Any]])
        let pieces = frames.indices.filter { frames[$0]["dumpID"] != nil }
        try #require(pieces.count >= 3, "\(frames.count) frames")
        let number = pieces[1]
        let start = try #require(frames[number]["stored"] as? Int)
        let end = try #require(frames[number + 1]["stored"] as? Int)
        let archiveStart = try #require(frames[number]["archive"] as? Int)
        let archiveEnd = try #require(frames[number + 1]["archive"] as? Int)
        // A byte in the middle of the frame's compressed data.
        let offset = stored.startIndex + (start + end) / 2
        stored[offset] ^= 0xFF
        let corruptKey = key.replacingOccurrences(of: ".default.", with: ".corrupt.")
        try pgclone.store(stored, as: corruptKey)

        let result = try await pgclone.restore(corruptKey, into: target, ["--jobs", "2"])
        #expect(result.exitCode == 1, "\(result)")
        #expect(result.errorLines.count == 1, "\(result)")
        let error = try #require(result.errorLines.first)
        #expect(
            error.hasPrefix("pgclone: error: the dump \(corruptKey) is corrupt ("),
            "\(error)"
        )
        #expect(
            error.hasSuffix(
                """
                , in a piece of table \"public\".\"t\"'s data (archive bytes \(archiveStart) to \(archiveEnd)); \
                \"\(target)\" is unchanged
                """
            ),
            "\(error)"
        )
        #expect(try await server.markers(target) == "old")
        #expect(try await server.databases(startingWith: target) == [target])
    }

    /// `inOrder`: t has a BRIN index, so that one session loads all of its pieces.
    @Test(arguments: [false, true])
    func aPieceTheServerRefusesFailsTheRestoreUnlessErrorsAreIgnored(inOrder: Bool) async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("pieces_copy_src")
        let (_, target) = try await pgclone.targetAndDump("pieces_copy")
        try await server.createDatabase(source)
        // A CHECK that refuses row 7 in pgclone's own sessions only (the source has it), in the
        // first of t's four pieces.
        try await server.psql(
            """
            CREATE FUNCTION not_in_pgclone(i int) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN
                IF i = 7 AND current_setting('application_name') LIKE 'pgclone%' THEN
                    RAISE EXCEPTION 'row % refused', i;
                END IF;
                RETURN true;
            END $$;
            CREATE TABLE t (i int CHECK (not_in_pgclone(i)), filler text);
            INSERT INTO t SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 100000) AS i;
            CREATE TABLE other AS SELECT 1 AS x;
            """,
            database: source
        )
        if inOrder { try await server.psql("CREATE INDEX t_brin ON t USING brin (i)", database: source) }
        let key = try await pgclone.dump(source)
        let failed = try await pgclone.restore(key, into: target, ["--jobs", "2"])
        #expect(failed.exitCode == 1, "\(failed)")
        #expect(
            failed.errorLines == [
                """
                pgclone: error: loading the table data failed (first: COPY failed for table \"public\".\"t\": row 7 \
                refused); \"\(target)\" is unchanged
                """
            ],
            "\(failed)"
        )
        #expect(failed.stderr.contains("--ignore-restore-errors would accept these errors"), "\(failed)")
        #expect(try await server.markers(target) == "old")
        #expect(try await server.databases(startingWith: target) == [target])

        let accepted = try await pgclone.restore(
            key,
            into: target,
            ["--jobs", "2", "--ignore-restore-errors", "--json"]
        )
        #expect(accepted.exitCode == 0, "\(accepted)")
        // One error for the table, as pg_restore counts a failed COPY, said to be pgclone's.
        let warnings = accepted.stderrLines.filter { $0.contains("COPY failed for table") }
        #expect(
            warnings == [
                """
                pgclone: warning: pgclone: COPY failed for table \"public\".\"t\": row 7 refused (the table is left \
                empty)
                """
            ],
            "\(accepted)"
        )
        let json = try #require(JSONSerialization.jsonObject(with: Data(accepted.stdout.utf8)) as? [String: Any])
        #expect(json["restore_errors"] as? Int == 1, "\(accepted.stdout)")
        // The table is empty, as pg_restore leaves it, not loaded but for the refused piece.
        #expect(try await server.psql("SELECT count(*) FROM t", database: target) == "0")
        #expect(try await server.psql("SELECT count(*) FROM other", database: target) == "1")
    }

    /// A COPY session the server ends (`pg_terminate_backend`, a crash) lost its connection: the
    /// restore fails saying so, not as a refused COPY that --ignore-restore-errors would accept (nor
    /// does that flag empty the table and go on), and the clean-up, whose own session still holds
    /// the lock, drops D__temp.
    @Test func aCopySessionTheServerEndsFailsTheRestoreAndLeavesNothing() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("pieces_term_src")
        let (_, target) = try await pgclone.targetAndDump("pieces_term")
        try await server.createDatabase(source)
        try await server.psql(Fixtures.slowRestoreSQL(rows: 8000, milliseconds: 5), database: source)
        let key = try await pgclone.dump(source)
        for options in [["--jobs", "2"], ["--jobs", "2", "--ignore-restore-errors"]] {
            async let restoring = pgclone.restore(key, into: target, options)
            try await Self.endSession(of: "\(target)__temp", running: "COPY %", on: server)
            let result = try await Self.expectLostConnection(try await restoring, target: target, on: server)
            #expect(!result.stderr.contains("--ignore-restore-errors would accept"), "\(result)")
            #expect(!result.stderr.contains("left empty"), "\(result)")
            // The statement shown under the error is pg_dump's without its final newline.
            #expect(!result.stderr.contains("FROM stdin;\\n"), "\(result)")
        }
    }

    /// Ends the first session on `database` running a statement LIKE `statement`, as a DBA's
    /// `pg_terminate_backend` would, once there is one (for up to 60 s), looking every 20 ms from
    /// one session (a psql for each look took half a second on a loaded machine, and missed it).
    static func endSession(of database: String, running statement: String, on server: PostgresServer) async throws {
        let session = try await server.connect("postgres")
        var ended: String?
        let deadline = ContinuousClock.now + .seconds(60)
        while ended != "t", ContinuousClock.now < deadline {
            ended =
                try await session.query(
                    """
                    SELECT coalesce(bool_or(pg_terminate_backend(pid)), false) FROM (
                        SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE $2 LIMIT 1) AS running
                    """,
                    [database, statement]
                ).first?.first ?? nil
            try await Task.sleep(for: .milliseconds(20))
        }
        await session.close()
        #expect(ended == "t", "no session on \(database) running \(statement) seen")
    }

    /// `result` is a restore into `target` that failed in one line because a session was lost,
    /// and left `target` as it was with nothing else behind.
    @discardableResult
    static func expectLostConnection(
        _ result: CommandResult,
        target: String,
        on server: PostgresServer
    ) async throws -> CommandResult {
        #expect(result.exitCode == 1, "\(result)")
        #expect(result.errorLines.count == 1, "\(result)")
        let error = try #require(result.errorLines.first)
        #expect(error.contains("connection to PostgreSQL was lost"), "\(error)")
        #expect(error.hasSuffix("\"\(target)\" is unchanged"), "\(error)")
        #expect(!result.stderr.contains("another pgclone restore"), "\(result)")
        // The statements that failed on the dead connection after it say nothing more.
        #expect(!result.stderrLines.contains { $0.hasPrefix("pgclone: warning:   statement:") }, "\(result)")
        #expect(try await server.markers(target) == "old")
        #expect(try await server.databases(startingWith: target) == [target])
        return result
    }

    /// A pg_restore session the server ends while it builds an index: pg_restore goes on, each
    /// statement after failing on the dead connection, and reports them all as errors. None of
    /// them is an error on one statement: with --ignore-restore-errors, in one stream and in
    /// pieces, the restore still fails saying the connection was lost, and swaps nothing in.
    @Test(arguments: [[String](), ["--jobs", "2"]])
    func aPgRestoreSessionTheServerEndsFailsTheRestoreWhateverErrorsAreIgnored(jobs: [String]) async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("pieces_idx_src")
        let (_, target) = try await pgclone.targetAndDump("pieces_idx")
        try await server.createDatabase(source)
        // An index whose expression sleeps 2 ms a row: its build takes seconds.
        try await server.psql(
            """
            CREATE FUNCTION slow_key(integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$
                BEGIN PERFORM pg_sleep(0.002); RETURN $1; END $$;
            CREATE TABLE t AS SELECT i FROM generate_series(1, 3000) AS i;
            CREATE INDEX t_slow ON t (slow_key(i));
            CREATE TABLE u (i int PRIMARY KEY);
            """,
            database: source
        )
        let key = try await pgclone.dump(source)
        async let restoring = pgclone.restore(key, into: target, jobs + ["--ignore-restore-errors"])
        try await Self.endSession(of: "\(target)__temp", running: "CREATE INDEX t_slow%", on: server)
        try await Self.expectLostConnection(try await restoring, target: target, on: server)
    }

    /// A role whose sessions end after a second idle (`idle_session_timeout`, which a managed
    /// server's role or database may set): pgclone's admin session waits idle through the restore,
    /// and in pieces the large objects' pg_restore while the tables load. Both turn it off.
    @Test func aRoleWithAnIdleSessionTimeoutRestores() async throws {
        let server = try PostgresServer.shared
        let user = try await server.createRole("idle", attributes: "CREATEDB")
        let pgclone = try PGCloneHarness(server: user)
        let source = TestEnvironment.uniqueName("idle_src")
        try await user.createDatabase(source)
        try await user.psql(
            Fixtures.slowRestoreSQL(rows: 4000, milliseconds: 4) + "SELECT lo_from_bytea(0, 'an object');",
            database: source
        )
        // Set once the source is made: the test's own psql sessions, on a loaded machine, may
        // wait longer than that between statements. What is checked afterwards, the superuser reads.
        try await server.psql("ALTER ROLE \(quoteIdentifier(user.user)) SET idle_session_timeout = '1s'")
        let key = try await pgclone.dump(source)
        for options in [[String](), ["--jobs", "2"]] {
            let target = TestEnvironment.uniqueName("idle_dst")
            let result = try await pgclone.restore(key, into: target, options)
            #expect(result.exitCode == 0, "\(options): \(result)")
            #expect(try await server.tableFingerprints(target) == server.tableFingerprints(source))
            #expect(try await server.psql("SELECT count(*) FROM pg_largeobject_metadata", database: target) == "1")
        }
    }

    @Test func aSIGKILLDuringTheLoadLeavesTheTargetAndNothingRunning() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("pieces_kill_src")
        let (_, target) = try await pgclone.targetAndDump("pieces_kill")
        try await server.createDatabase(source)
        // Rows whose CHECK sleeps: the COPY sessions are busy for about 20 s, which a loaded
        // machine's polling and signalling (seconds, seen in CI) does not outlast (5 s did).
        try await server.psql(Fixtures.slowRestoreSQL(rows: 8000, milliseconds: 20), database: source)
        let key = try await pgclone.dump(source)
        for signal in [SIGTERM, SIGKILL] {
            async let restoring = pgclone.restore(key, into: target, ["--jobs", "2"])
            // Both COPY sessions at work on D__temp.
            var copying = 0
            for _ in 0..<600 where copying < 2 {
                copying =
                    Int(
                        try await server.psql(
                            """
                            SELECT count(*) FROM pg_stat_activity WHERE datname = '\(target)__temp' \
                            AND query LIKE 'COPY %'
                            """
                        )
                    ) ?? 0
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(copying == 2, "COPY sessions seen: \(copying)")
            #expect(!pgclone.signal(signal).isEmpty)
            let result = try await restoring
            #expect(result.exitCode == 128 + signal, "\(result)")
            #expect(try await pgclone.processesAlive(after: .seconds(15)).isEmpty)
            #expect(try await server.markers(target) == "old")
            // The server ends the killed pgclone's sessions as their sockets close.
            var left = "?"
            for _ in 0..<100 {
                left = try await server.psql(
                    """
                    SELECT count(*) FROM pg_stat_activity WHERE datname LIKE '\(target)%' \
                    AND backend_type = 'client backend'
                    """
                )
                if left == "0" { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(left == "0")
            if signal == SIGTERM {
                #expect(try await server.databases(startingWith: target) == [target])
            }
        }
        // What the SIGKILLed run left, the next restore drops.
        let again = try await pgclone.restore(key, into: target, ["--jobs", "2"])
        #expect(again.exitCode == 0, "\(again)")
        #expect(try await server.databases(startingWith: target) == [target])
        #expect(try await server.psql("SELECT count(*) FROM slow_rows", database: target) == "8000")
    }
}

/// A restore in pieces from S3: the object read as a streamed restore reads it, in ranged GETs of
/// parts, one cut off mid-way and resumed where it stopped, the pieces cut out of it loading as
/// they come.
@Suite(.enabled(if: TestEnvironment.hasPostgresAndS3, "run with scripts/test.sh (needs PostgreSQL and moto)"))
struct S3PieceRestoreTests {
    let s3 = S3TestServer.shared!

    @Test func aPartCutOffMidwayIsResumedAndEveryPieceLoads() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        // About 13 MiB of archive (four pieces of t), read in parts of 256 KiB.
        let dump = try await pgclone.dumpToNewBucket(s3, prefix: "pieces_s3", rows: 200_000)
        let target = TestEnvironment.uniqueName("pieces_s3_dst")
        // A GET of a range inside the object (a part but the first) is reset after 20,000 bytes.
        let (proxied, log, stop) = try await s3.behindFaultyProxy(["GETMID:reset:20000"])
        defer { stop() }
        var environment = dump.environment
        environment["PGCLONE_S3_ENDPOINT_URL"] = proxied.endpoint
        environment["TMPDIR"] = "/nonexistent-tmp"
        let restored = try await pgclone.run(
            ["restore", dump.key, "--database", server.url(target), "--jobs", "3"],
            environment: environment
        )
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(restored.stderr.contains("pgclone: restoring in "), "\(restored)")
        let lines = log().split(separator: "\n")
        let fault = try #require(lines.firstIndex { $0.hasPrefix("fault GETMID:reset") }, "\(log())")
        let retries = restored.stderrLines.filter { $0.contains("S3 GetObject part") && $0.contains("retrying") }
        #expect(retries.count == 1, "\(restored)")
        #expect(retries.first?.contains("transfer interrupted") == true, "\(restored)")
        // The cut range, then the same range's rest: resumed where it stopped, to the same end.
        let ranges = lines.compactMap { line -> (Int, Int)? in
            guard let match = line.wholeMatch(of: /GET bytes=(\d+)-(\d+)/) else { return nil }
            return (Int(match.1)!, Int(match.2)!)
        }
        let cut = try #require(lines[fault].firstMatch(of: /bytes=(\d+)-(\d+)/), "\(log())")
        let (start, end) = (Int(cut.1)!, Int(cut.2)!)
        #expect(ranges.contains { $0.0 > start && $0.0 <= start + 20_000 && $0.1 == end }, "\(log())")
        #expect(try await server.tableFingerprints(target) == server.tableFingerprints(dump.source))
    }
}
