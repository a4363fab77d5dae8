import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// Excluding a partitioned table's data excludes the data of all its partitions, at every level
/// (issue 13 §4): with pg_dump 15, through the partitions pgclone finds in the catalog; with
/// pg_dump 18, through `--exclude-table-data-and-children`. Whatever names the exclusion (a flag,
/// a model, a config's wildcard pattern), the restored partitions are empty and the other tables
/// are as they were.
@Suite(
    .serialized,
    .enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)")
)
struct PartitionExclusionTests {
    /// How the test names the tables to leave out.
    enum Exclusion: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// `--exclude-table-data events_event`: an unqualified name.
        case tableFlag
        /// `--exclude-model events.Event`.
        case modelFlag
        /// A config's `exclude_tables: ['public.events_*', '"Audit Log"']`: a wildcard, and a
        /// quoted mixed-case name.
        case configPatterns

        var testDescription: String { rawValue }
    }

    /// `events_event`, partitioned by range: a partition itself partitioned by list (three
    /// leaves, one in another schema under an odd name, and a default), another leaf, and a
    /// default. `"Audit Log"`, partitioned too; `shop_order`, a plain table. No partition's name
    /// starts with its parent's, so a pattern for the parent matches no partition itself.
    static let schema = """
        CREATE SCHEMA "Mixed Schema";
        CREATE TABLE events_event (id int, happened date, region text, email text) PARTITION BY RANGE (happened);
        CREATE TABLE ev_2024 PARTITION OF events_event FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY \
        LIST (region);
        CREATE TABLE ev_2024_eu PARTITION OF ev_2024 FOR VALUES IN ('eu');
        CREATE TABLE "Mixed Schema"."EV ""US"".2024" PARTITION OF ev_2024 FOR VALUES IN ('us');
        CREATE TABLE ev_2024_rest PARTITION OF ev_2024 DEFAULT;
        CREATE TABLE ev_2025 PARTITION OF events_event FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE ev_default PARTITION OF events_event DEFAULT;
        INSERT INTO events_event
            SELECT i, date '2024-01-01' + (i % 800), (ARRAY['eu', 'us', 'apac'])[1 + i % 3], 'user' || i || \
            '@example.com'
            FROM generate_series(1, 3000) AS i;
        CREATE TABLE "Audit Log" (id int, at date) PARTITION BY RANGE (at);
        CREATE TABLE audit_2024 PARTITION OF "Audit Log" FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE audit_rest PARTITION OF "Audit Log" DEFAULT;
        INSERT INTO "Audit Log" SELECT i, date '2024-06-01' + i FROM generate_series(1, 400) AS i;
        CREATE TABLE shop_order (id int PRIMARY KEY, customer text, total numeric(10, 2));
        INSERT INTO shop_order SELECT i, 'c' || i, i * 1.25 FROM generate_series(1, 500) AS i;
        """

    /// `events_event` and every table below it, as `tableFingerprints` names them.
    static let eventTables: Set = [
        "public.events_event", "public.ev_2024", "public.ev_2024_eu", "\"Mixed Schema\".\"EV \"\"US\"\".2024\"",
        "public.ev_2024_rest", "public.ev_2025", "public.ev_default",
    ]
    static let auditTables: Set = ["public.\"Audit Log\"", "public.audit_2024", "public.audit_rest"]

    @Test(arguments: PostgresServer.all, Exclusion.allCases)
    func excludingAPartitionedTableExcludesEveryPartition(server: PostgresServer, exclusion: Exclusion) async throws {
        let pgclone = try PGCloneHarness(server: server)
        let source = TestEnvironment.uniqueName("part_src")
        let target = TestEnvironment.uniqueName("part_dst")
        try await server.createDatabase(source)
        try await server.psql(Self.schema, database: source)
        let before = try await server.tableFingerprints(source)
        // Every table has rows to lose (the partitioned ones through their leaves).
        #expect(Set(before.keys) == Self.eventTables.union(Self.auditTables).union(["public.shop_order"]))
        for (table, fingerprint) in before {
            #expect(!fingerprint.hasPrefix("0|"), "\(table) has no rows in the source: \(fingerprint)")
        }

        var arguments = ["dump", "--database", server.url(source), "--log-level", "debug"]
        var excluded = Self.eventTables
        switch exclusion {
        case .tableFlag:
            arguments += ["--exclude-table-data", "events_event"]
        case .modelFlag:
            arguments += ["--exclude-model", "events.Event"]
        case .configPatterns:
            try """
            dump_configs:
              default:
                exclude_tables: ['public.events_*', '"Audit Log"']
            """.write(toFile: pgclone.directory + "/pgclone.yaml", atomically: true, encoding: .utf8)
            excluded.formUnion(Self.auditTables)
        }
        let dumped = try await pgclone.run(arguments)
        #expect(dumped.exitCode == 0, "\(server.label), \(exclusion): \(dumped)")
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        // pg_dump 16 and newer leave out the children themselves; older ones are given every
        // partition found in the catalog.
        let serverVersion = try #require(Int(try await server.psql("SHOW server_version_num", database: source)))
        if serverVersion >= 160_000 {
            #expect(dumped.stderr.contains("(--exclude-table-data-and-children)"), "\(server.label): \(dumped.stderr)")
        } else {
            let count = excluded.count - (exclusion == .configPatterns ? 2 : 1)
            #expect(
                dumped.stderr.contains(
                    "leaving out the data of \(count) partitions and child tables of the excluded tables too"
                ),
                "\(server.label): \(dumped.stderr)"
            )
        }

        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(server.label), \(exclusion): \(restored)")
        let after = try await server.tableFingerprints(target)
        // Every table is there (only data is left out), empty if excluded, else exactly as it was.
        #expect(Set(after.keys) == Set(before.keys))
        for (table, fingerprint) in after.sorted(by: { $0.key < $1.key }) {
            if excluded.contains(table) {
                #expect(
                    fingerprint.hasPrefix("0|"),
                    "\(server.label), \(exclusion): \(table) kept rows: \(fingerprint)"
                )
            } else {
                #expect(fingerprint == before[table], "\(server.label), \(exclusion): \(table) changed")
            }
        }
        try await server.dropDatabase(source)
        try await server.dropDatabase(target)
    }

    /// pgclone matches a pattern in the catalog as pg_dump does (quotes, case, wildcards, regular
    /// expressions, `$`, schemas and the search path's visibility, database-qualified names), and
    /// reaches the same partitions and children, at every level: what pg_dump itself dumps with
    /// `--table` (pg_dump 15), or `--table-and-children` (16 and newer), is the oracle.
    @Test(arguments: PostgresServer.all)
    func patternsReachTheTablesPgDumpReaches(server: PostgresServer) async throws {
        let database = TestEnvironment.uniqueName("part_pat")
        try await server.createDatabase(database)
        try await server.psql(
            """
            CREATE SCHEMA app; CREATE SCHEMA hidden; CREATE SCHEMA "Mixed Schema";
            CREATE TABLE public.events_event (id int); CREATE TABLE public.events_2024 (id int);
            CREATE TABLE public."Events" (id int); CREATE TABLE public."we.ird" (id int);
            CREATE TABLE public."x$y" (id int); CREATE TABLE public."a""b" (id int);
            CREATE TABLE public.part_1 (id int); CREATE TABLE public.part_22 (id int);
            CREATE TABLE app.events_event (id int); CREATE TABLE app.only_in_app (id int);
            CREATE TABLE hidden.secret (id int); CREATE TABLE "Mixed Schema"."Mixed Case" (id int);
            CREATE TABLE public.tree (id int, k int) PARTITION BY LIST (k);
            CREATE TABLE public.tree_1 PARTITION OF public.tree FOR VALUES IN (1) PARTITION BY LIST (id);
            CREATE TABLE hidden.tree_1_a PARTITION OF public.tree_1 FOR VALUES IN (1);
            CREATE TABLE public.tree_other PARTITION OF public.tree DEFAULT;
            CREATE TABLE public.legacy (id int); CREATE TABLE public.legacy_child () INHERITS (public.legacy);
            ALTER DATABASE \(quoteIdentifier(database)) SET search_path = public, app;
            """,
            database: database
        )
        let patterns = [
            "events_event", "app.events_event", "*.events_event", "events_*", "Events", "\"Events\"", "EVENTS_EVENT",
            "\"we.ird\"", "we.ird", "\"x$y\"", "x$y", "\"a\"\"b\"", "part_[0-9]", "part_[0-9]+", "part_?",
            "public.events_event|part_1", "only_in_app", "secret", "hidden.*", "\"Mixed Schema\".\"Mixed Case\"",
            "\"Mixed Schema\".*", "mixed schema.*", "tree", "tree_1", "*.tree_1_a", "legacy",
            "\(database).public.events_event",
        ]
        let serverVersion = try #require(Int(try await server.psql("SHOW server_version_num", database: database)))
        var environment = ProcessInfo.processInfo.environment
        environment["PGCLONE_PG_BIN_DIR"] = server.binDirectory
        let tools = try await PostgresInstallations.discover(environment: environment)
            .forDump(serverVersion: serverVersion, serverVersionText: "\(serverVersion)")
        let pgDumpVersion = try #require(await tools.pgDumpMajorVersion())
        let withChildren = pgDumpVersion >= 16
        let connection = try await PostgresConnection.connect(
            ConnectionSettings(conninfo: server.url(database), from: "test")
        )
        var reachedAny = 0
        for pattern in patterns {
            var ours: Set<String> = []
            for table in try await TableDataExclusion.tables(reachedBy: pattern, in: connection)
            where withChildren || table.matched {
                // Named as pg_dump prints names: quoted only where needed.
                let rows = try await connection.query(
                    "SELECT pg_catalog.format('%I.%I', $1::text, $2::text)",
                    [table.schema, table.name]
                )
                ours.insert(try #require(rows.first?.first ?? nil))
            }
            let option = withChildren ? "--table-and-children=" : "--table="
            let dumped = try await runCommand(
                tools.pgDump,
                ["--schema-only", "--no-owner", "--no-acl", option + pattern],
                environment: server.environment(database)
            )
            var theirs: Set<String> = []
            if dumped.exitCode == 0 {
                for line in dumped.stdout.split(separator: "\n")
                where line.hasPrefix("CREATE TABLE ") && line.hasSuffix(" (") {
                    theirs.insert(String(line.dropFirst("CREATE TABLE ".count).dropLast(2)))
                }
            } else {
                #expect(
                    dumped.stderr.contains("no matching tables were found"),
                    "\(server.label), \(pattern): \(dumped)"
                )
            }
            #expect(ours == theirs, "pg_dump \(pgDumpVersion) on \(server.label), pattern \(pattern)")
            reachedAny += theirs.isEmpty ? 0 : 1
        }
        await connection.close()
        // Most patterns match something: the comparison is not between empty sets.
        #expect(reachedAny >= patterns.count - 4)
        try await server.dropDatabase(database)
    }
}
