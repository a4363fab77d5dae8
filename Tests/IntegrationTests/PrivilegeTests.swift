import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// Owners and privileges: a restore gives every object the dump's owner and privileges for every
/// role this server has and the restoring role may act as; the rest belongs to the restoring role,
/// grants to missing roles are skipped and reported, and nothing ends up more open than the source.
@Suite(
    .serialized,
    .enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)")
)
struct PrivilegeTests {
    /// Roles of one test: the application's owner role (the restoring role is a member), a
    /// read-only role, a role the restoring role is not a member of, and one the target lacks.
    struct Roles {
        var owner: String
        var reader: String
        /// The server as the read-only role.
        var readerLogin: PostgresServer
        var other: String
        var ghost: String
    }

    /// Every object's owner and privileges in the schemas `public` and `s`, large objects and
    /// default privileges, one line each: `kind name | owner | grantee:privilege,…` with the
    /// owner's own privileges left out (an object whose owner is mapped keeps its grants) and
    /// PostgreSQL's defaults written out (a function with no ACL is PUBLIC's to execute).
    static func privileges(_ server: PostgresServer, _ database: String) async throws -> [String] {
        let rows = try await server.psql(
            """
            WITH objects(kind, name, owner, acl) AS (
                SELECT 'relation', n.nspname || '.' || c.relname, c.relowner,
                       coalesce(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", \
                       c.relowner))
                FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
                WHERE n.nspname IN ('public', 's') AND c.relkind IN ('r', 'S', 'v', 'm', 'p')
              UNION ALL
                SELECT 'column', n.nspname || '.' || c.relname || '.' || a.attname, c.relowner, a.attacl
                FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid JOIN pg_namespace AS n ON n.oid = \
                c.relnamespace
                WHERE n.nspname IN ('public', 's') AND a.attnum > 0 AND a.attacl IS NOT NULL
              UNION ALL
                SELECT 'function', n.nspname || '.' || p.proname, p.proowner, coalesce(p.proacl, acldefault('f', \
                p.proowner))
                FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace WHERE n.nspname IN ('public', 's')
              UNION ALL
                SELECT 'type', n.nspname || '.' || t.typname, t.typowner, coalesce(t.typacl, acldefault('T', \
                t.typowner))
                FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace
                WHERE n.nspname IN ('public', 's') AND t.typtype IN ('d', 'e')
              UNION ALL
                SELECT 'schema', n.nspname, n.nspowner, coalesce(n.nspacl, acldefault('n', n.nspowner))
                FROM pg_namespace AS n WHERE n.nspname IN ('public', 's')
              UNION ALL
                SELECT 'large object', (SELECT count(*) FROM pg_largeobject_metadata AS o WHERE o.oid < l.oid)::text,
                       l.lomowner, coalesce(l.lomacl, acldefault('L', l.lomowner))
                FROM pg_largeobject_metadata AS l
              UNION ALL
                SELECT 'default privileges ' || d.defaclobjtype::text, coalesce(n.nspname, '*'), d.defaclrole, \
                d.defaclacl
                FROM pg_default_acl AS d LEFT JOIN pg_namespace AS n ON n.oid = d.defaclnamespace
            )
            SELECT o.kind || ' ' || o.name || ' | ' || pg_get_userbyid(o.owner) || ' | ' ||
                   coalesce((SELECT string_agg(coalesce(pg_get_userbyid(nullif(a.grantee, 0)), 'PUBLIC') || ':' || \
                   a.privilege_type
                                               || CASE WHEN a.is_grantable THEN '*' ELSE '' END, ',' ORDER BY 1)
                             FROM aclexplode(o.acl) AS a WHERE a.grantee <> o.owner), '-')
            FROM objects AS o ORDER BY 1
            """,
            database: database
        )
        return rows.split(separator: "\n").map(String.init)
    }

    /// A source with a read-only role's grants and default privileges, REVOKEs (a function and a
    /// type PUBLIC may not use), a schema owned by a role the restoring role is not a member of,
    /// column and large-object privileges, and grants to a role the target will lack.
    static func makeSource(_ server: PostgresServer, _ roles: Roles) async throws -> String {
        let source = TestEnvironment.uniqueName("priv_src")
        try await server.createDatabase(source)
        let (owner, reader, other, ghost) = (
            quoteIdentifier(roles.owner), quoteIdentifier(roles.reader), quoteIdentifier(roles.other),
            quoteIdentifier(roles.ghost)
        )
        try await server.psql("ALTER DATABASE \(quoteIdentifier(source)) OWNER TO \(owner)")
        let largeObject = try await server.psql("SET ROLE \(owner); SELECT lo_from_bytea(0, 'large')", database: source)
        try await server.psql(
            """
            SET ROLE \(owner);
            CREATE TABLE t (id int PRIMARY KEY, secret text);
            INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 50) AS g;
            CREATE SEQUENCE q;
            CREATE TYPE mood AS ENUM ('ok', 'not ok');
            CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';
            CREATE VIEW v AS SELECT id FROM t;
            REVOKE EXECUTE ON FUNCTION f() FROM PUBLIC;
            REVOKE USAGE ON TYPE mood FROM PUBLIC;
            GRANT SELECT ON t, v TO \(reader);
            GRANT USAGE ON SEQUENCE q TO \(reader);
            GRANT EXECUTE ON FUNCTION f() TO \(reader);
            GRANT USAGE ON TYPE mood TO \(reader);
            GRANT SELECT, INSERT ON t TO \(ghost);
            GRANT EXECUTE ON FUNCTION f() TO \(ghost);
            GRANT SELECT ON LARGE OBJECT \(largeObject) TO \(reader);
            ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO \(reader);
            ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
            RESET ROLE;
            CREATE SCHEMA s AUTHORIZATION \(other);
            SET ROLE \(other);
            CREATE TABLE s.u (a int, b int);
            CREATE INDEX u_a ON s.u (a);
            INSERT INTO s.u VALUES (1, 2);
            GRANT USAGE ON SCHEMA s TO \(reader);
            GRANT SELECT (a) ON s.u TO \(reader);
            RESET ROLE;
            CREATE MATERIALIZED VIEW public.mv AS SELECT count(*) AS n FROM public.t;
            ALTER MATERIALIZED VIEW public.mv OWNER TO \(reader);
            """,
            database: source
        )
        return source
    }

    static func makeRoles(_ server: PostgresServer, restoringRole user: PostgresServer) async throws -> Roles {
        let reader = try await server.createRole("reader")
        let roles = Roles(
            owner: try await server.createRole("appowner").user,
            reader: reader.user,
            readerLogin: reader,
            other: try await server.createRole("other").user,
            ghost: try await server.createRole("ghost").user
        )
        if user.user != server.user {
            try await server.psql("GRANT \(quoteIdentifier(roles.owner)) TO \(quoteIdentifier(user.user))")
        }
        return roles
    }

    @Test(arguments: PostgresServer.all, TestRole.allCases)
    func everyRoleHereKeepsItsPrivilegesAndNothingIsMoreOpen(server: PostgresServer, role: TestRole) async throws {
        let user = try await role.user(on: server)
        let roles = try await Self.makeRoles(server, restoringRole: user)
        let source = try await Self.makeSource(server, roles)
        let pgclone = try PGCloneHarness(server: user)
        let dumped = try await pgclone.run(["dump", "--database", server.url(source)])
        #expect(dumped.exitCode == 0, "\(dumped)")
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let withGhost = try await Self.privileges(server, source)
        #expect(
            withGhost.contains { $0.hasPrefix("function public.f | ") && $0.contains("\(roles.ghost):EXECUTE") },
            "\(withGhost)"
        )
        // The source's, less what names the role the target will lack.
        try await server.psql("DROP OWNED BY \(quoteIdentifier(roles.ghost))", database: source)
        try await server.psql("DROP ROLE \(quoteIdentifier(roles.ghost))")
        let expected = try await Self.privileges(server, source)
        #expect(expected.contains("function public.f | \(roles.owner) | \(roles.reader):EXECUTE"), "\(expected)")
        #expect(expected.contains("type public.mood | \(roles.owner) | \(roles.reader):USAGE"), "\(expected)")

        // A role that may not act as the schema's owner gets the schema; its grants stay.
        let mapped =
            role == .superuser
            ? expected
            : expected.map { line in
                line.hasPrefix("schema s |") || line.hasPrefix("relation s.u |") || line.hasPrefix("column s.u.a |")
                    ? line.replacingOccurrences(of: "| \(roles.other) |", with: "| \(user.user) |")
                    : line.hasPrefix("relation public.mv |")
                        ? line.replacingOccurrences(of: "| \(roles.reader) |", with: "| \(user.user) |") : line
            }
        let ghostGrants = "2 privileges of \"\(roles.ghost)\" (no such role here) were skipped"
        let warning =
            role == .superuser
            ? """
            pgclone: warning: owners and privileges as in the dump, but for roles this server lacks or \
            \"\(user.user)\" may not act as: \(ghostGrants)
            """
            : """
            pgclone: warning: owners and privileges as in the dump, but for roles this server lacks or \
            \"\(user.user)\" may not act as: 2 objects of \"\(roles.other)\" (\"\(user.user)\" may not SET ROLE \
            to it) and 1 object of \"\(roles.reader)\" (\"\(user.user)\" may not SET ROLE to it) belong to \
            \"\(user.user)\"; \(ghostGrants)
            """

        // A first restore, a restore over D, which the owner role owns, with pg_restore -j (whose
        // errors come from its workers) from a dump without an index, and one in pieces.
        let fresh = TestEnvironment.uniqueName("priv_new")
        let existing = TestEnvironment.uniqueName("priv_old")
        let pieces = TestEnvironment.uniqueName("priv_pieces")
        try await server.psql(
            "CREATE DATABASE \(quoteIdentifier(existing)) TEMPLATE template0 OWNER \(quoteIdentifier(roles.owner))"
        )
        let unindexed = try pgclone.storeWithoutIndex(key)
        for (target, options, key) in [
            (fresh, ["--json"], key), (existing, ["--jobs", "2"], unindexed), (pieces, ["--jobs", "2"], key),
        ] {
            let restored = try await pgclone.restore(key, into: target, options)
            #expect(restored.exitCode == 0, "\(restored)")
            #expect(restored.stderr.contains(warning + "\n"), "\(restored)")
            // pg_restore -j's workers write their errors into each other: with owners that cannot
            // be given, one session restores; else the privileges come in a serial second run. (In
            // pieces, the schema is always one session's, the data pgclone's, and the privileges
            // come last: only the indexes of s.u, which "other" owns, are built in one session.)
            let serial = """
                pgclone: warning: restored with one pg_restore session, not --jobs: the dump names owners this server \
                lacks or the restoring role may not assign
                """
            #expect(
                restored.stderr.contains(serial) == (role == .application && key == unindexed),
                "\(restored)"
            )
            let serialIndexes = """
                pgclone: warning: built indexes and constraints with one pg_restore session, not --jobs: the dump \
                names owners this server lacks or the restoring role may not assign
                """
            #expect(
                restored.stderr.contains(serialIndexes) == (role == .application && target == pieces),
                "\(restored)"
            )
            if options.contains("--json") {
                // The same, for machines.
                let json = try JSONSerialization.jsonObject(with: Data(restored.stdout.utf8)) as? [String: Any]
                let tallies = { (key: String) in
                    (json?[key] as? [[String: Any]])?.map {
                        "\($0["role"] ?? "") \($0["count"] ?? "") \($0["reason"] ?? "")"
                    }
                }
                #expect(tallies("privileges_not_restored") == ["\(roles.ghost) 2 missing_role"], "\(restored.stdout)")
                #expect(
                    tallies("owners_not_restored")
                        == (role == .superuser
                            ? [] : ["\(roles.other) 2 not_a_member", "\(roles.reader) 1 not_a_member"]),
                    "\(restored.stdout)"
                )
            }
            #expect(try await Self.privileges(server, target) == mapped, "\(target)")
            #expect(try await server.tableFingerprints(target) == server.tableFingerprints(source))
            // The view's owner reads the table through a grant its ACL entry shares with the
            // missing role's: refreshed once that grant is in.
            #expect(try await server.psql("SELECT n FROM public.mv", database: target) == "50", "\(target)")
        }
        // The read-only role reads, and only reads.
        let asReader = roles.readerLogin
        #expect(try await asReader.psql("SELECT count(*) FROM public.t", database: existing) == "50")
        #expect(try await asReader.psql("SELECT count(*) FROM public.t", database: pieces) == "50")
        await #expect(throws: (any Error).self) {
            try await asReader.psql("INSERT INTO public.t VALUES (99, 'no')", database: existing)
        }

        // --no-owner --no-acl: as before, everything the restoring role's with no grants; in one
        // stream and in pieces.
        let bare = TestEnvironment.uniqueName("priv_bare")
        let barePieces = TestEnvironment.uniqueName("priv_bare_pieces")
        for (target, jobs) in [(bare, [String]()), (barePieces, ["--jobs", "2"])] {
            let restored = try await pgclone.restore(key, into: target, ["--no-owner", "--no-acl"] + jobs)
            #expect(restored.exitCode == 0, "\(restored)")
            #expect(!restored.stderr.contains("owners and privileges"), "\(restored)")
            #expect(
                restored.stderr.contains("pgclone: warning: restoring without the dump's privileges (--no-acl)"),
                "\(restored)"
            )
            #expect(restored.stderr.contains("pgclone: restoring in ") == !jobs.isEmpty, "\(restored)")
            let owners = try await server.psql(
                """
                SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace IN \
                ('public'::regnamespace, 's'::regnamespace)
                """,
                database: target
            )
            #expect(owners == user.user, "\(target)")
            #expect(
                try await server.psql(
                    "SELECT count(*) FROM pg_class WHERE relname = 't' AND relacl IS NOT NULL",
                    database: target
                ) == "0"
            )
            #expect(try await server.tableFingerprints(target) == server.tableFingerprints(source))
        }
        for database in [source, fresh, existing, bare, barePieces] { try await server.dropDatabase(database) }
    }

    /// A table privilege granted on from another role's grant option (pg_dump writes it after
    /// `SET SESSION AUTHORIZATION lead`, which only a superuser may run): an application role that
    /// may SET ROLE to the grantor makes it as the grantor, so revoking the grantor's option
    /// `CASCADE` still takes it; one that may not makes it as the owner, and says so.
    @Test(arguments: PostgresServer.all)
    func aGrantChainKeepsItsGrantorWhereTheRoleMayActAsIt(server: PostgresServer) async throws {
        let user = try await TestRole.application.user(on: server)
        let lead = try await server.createRole("lead")
        let member = try await server.createRole("member")
        let pgclone = try PGCloneHarness(server: user)
        let source = TestEnvironment.uniqueName("chain_src")
        try await user.createDatabase(source)
        let (leadName, memberName) = (quoteIdentifier(lead.user), quoteIdentifier(member.user))
        try await user.psql(
            """
            CREATE TABLE t (v int); INSERT INTO t VALUES (1);
            GRANT SELECT ON t TO \(leadName) WITH GRANT OPTION;
            """,
            database: source
        )
        try await server.psql("SET ROLE \(leadName); GRANT SELECT ON t TO \(memberName)", database: source)
        let key = try await pgclone.dump(source)
        let acl = "SELECT relacl::text FROM pg_class WHERE oid = 'public.t'::regclass"

        let flat = TestEnvironment.uniqueName("chain_flat")
        let flattened = try await pgclone.restore(key, into: flat, ["--json"])
        #expect(flattened.exitCode == 0, "\(flattened)")
        #expect(
            flattened.stderr.contains(
                """
                1 grant of \"\(lead.user)\" (\"\(user.user)\" may not SET ROLE to it) from its grant option was made \
                by the objects' owners
                """
            ),
            "\(flattened)"
        )
        let json = try JSONSerialization.jsonObject(with: Data(flattened.stdout.utf8)) as? [String: Any]
        let byOwners = (json?["grants_made_by_owners"] as? [[String: Any]])?.map {
            "\($0["role"] ?? "") \($0["count"] ?? "")"
        }
        #expect(byOwners == ["\(lead.user) 1"], "\(flattened.stdout)")
        #expect(try await server.psql(acl, database: flat).contains("\(member.user)=r/\(user.user)"))

        try await server.psql("GRANT \(leadName) TO \(quoteIdentifier(user.user))")
        let chained = TestEnvironment.uniqueName("chain_kept")
        let restored = try await pgclone.restore(key, into: chained)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(!restored.stderr.contains("grant option"), "\(restored)")
        let kept = try await server.psql(acl, database: chained)
        #expect(kept.contains("\(member.user)=r/\(lead.user)"), "\(kept)")
        try await user.psql("REVOKE GRANT OPTION FOR SELECT ON t FROM \(leadName) CASCADE", database: chained)
        #expect(!(try await server.psql(acl, database: chained)).contains(member.user))
        for database in [source, flat, chained] { try await server.dropDatabase(database) }
    }

    /// `--role appowner` run by a member: pg_restore SETs ROLE first, so the restored objects are
    /// `appowner`'s, those of owners it may not assign included.
    @Test(arguments: PostgresServer.all)
    func restoringAsTheOwnerRoleGivesItEveryObject(server: PostgresServer) async throws {
        let user = try await TestRole.application.user(on: server)
        let roles = try await Self.makeRoles(server, restoringRole: user)
        let source = try await Self.makeSource(server, roles)
        let pgclone = try PGCloneHarness(server: user)
        let dumped = try await pgclone.run(["dump", "--database", server.url(source), "--no-acl"])
        #expect(dumped.exitCode == 0, "\(dumped)")
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // In one stream, and in pieces (whose COPY sessions SET ROLE too).
        let target = TestEnvironment.uniqueName("priv_role")
        let inPieces = TestEnvironment.uniqueName("priv_role_pieces")
        for (target, jobs) in [(target, [String]()), (inPieces, ["--jobs", "2"])] {
            let restored = try await pgclone.restore(key, into: target, ["--role", roles.owner] + jobs)
            #expect(restored.exitCode == 0, "\(restored)")
            #expect(
                restored.stderr.contains(
                    """
                    pgclone: warning: owners and privileges as in the dump, but for roles this server lacks or \
                    \"\(roles.owner)\" may not act as: 2 objects of \"\(roles.other)\" (\"\(roles.owner)\" may not \
                    SET ROLE to it) and 1 object of \"\(roles.reader)\" (\"\(roles.owner)\" may not SET ROLE to it) \
                    belong to \"\(roles.owner)\"\n
                    """
                ),
                "\(restored)"
            )
            let owners = try await server.psql(
                """
                SELECT string_agg(DISTINCT pg_get_userbyid(owner), ',') FROM (
                    SELECT relowner FROM pg_class WHERE relnamespace IN ('public'::regnamespace, 's'::regnamespace)
                    UNION ALL SELECT nspowner FROM pg_namespace WHERE nspname = 's'
                    UNION ALL SELECT proowner FROM pg_proc WHERE pronamespace = 'public'::regnamespace
                    UNION ALL SELECT lomowner FROM pg_largeobject_metadata) AS o(owner)
                """,
                database: target
            )
            #expect(owners == roles.owner)
            // No privileges in the dump: none restored, and none of the source's REVOKEs either.
            #expect(
                try await server.psql(
                    "SELECT count(*) FROM pg_class WHERE relname = 't' AND relacl IS NOT NULL",
                    database: target
                ) == "0"
            )
            #expect(restored.stderr.contains("pgclone: restoring in ") == !jobs.isEmpty, "\(restored)")
            #expect(try await server.tableFingerprints(target) == server.tableFingerprints(source))
        }

        // A role to restore as that this role may not become: one line, nothing done.
        let refused = try await pgclone.restore(key, into: target, ["--role", roles.reader])
        #expect(refused.exitCode != 0)
        #expect(
            refused.stderr.contains(
                """
                pgclone: error: role \"\(user.user)\" may not SET ROLE to \"\(roles.reader)\", the role to \
                restore as (--role, or a restore config's role); GRANT \(quoteIdentifier(roles.reader)) TO \
                \(quoteIdentifier(user.user))
                """
            ),
            "\(refused)"
        )
        #expect(try await server.databases(startingWith: target) == [target])
        for database in [source, target, inPieces] { try await server.dropDatabase(database) }
    }

    /// The config keys say what the flags say: a dump config without owners and privileges
    /// (restored as the dumps of earlier releases), a restore config restoring as another role.
    @Test func theConfigKeysSayWhatTheFlagsSay() async throws {
        let server = try PostgresServer.shared
        let user = try await TestRole.application.user(on: server)
        let roles = try await Self.makeRoles(server, restoringRole: user)
        let source = try await Self.makeSource(server, roles)
        let pgclone = try PGCloneHarness(server: user)
        try """
        dump_configs:
          bare: {no_owner: true, no_acl: true}
        restore_configs:
          owned: {role: \(roles.owner)}
        """.write(toFile: pgclone.directory + "/pgclone.yaml", atomically: true, encoding: .utf8)
        let dumped = try await pgclone.run(["dump", "--config", "bare", "--database", server.url(source)])
        #expect(dumped.exitCode == 0, "\(dumped)")
        #expect(
            dumped.stderr.contains("pgclone: warning: dumping without the source's privileges (--no-acl)"),
            "\(dumped)"
        )
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let ownersQuery = """
            SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',') FROM pg_class WHERE relnamespace = \
            'public'::regnamespace
            """
        let aclQuery =
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relacl IS NOT NULL"
        for (config, owner) in [("default", user.user), ("owned", roles.owner)] {
            let target = TestEnvironment.uniqueName("priv_cfg")
            let restored = try await pgclone.restore(key, into: target, ["--config", config])
            #expect(restored.exitCode == 0, "\(restored)")
            #expect(!restored.stderr.contains("owners and privileges"), "\(restored)")
            #expect(try await server.psql(ownersQuery, database: target) == owner, "\(config)")
            #expect(try await server.psql(aclQuery, database: target) == "0", "\(config)")
            try await server.dropDatabase(target)
        }
        // A name is a string: YAML's null, booleans and numbers are not names.
        for value in ["null", "true", "5", "\"\""] {
            try "restore_configs:\n  owned: {role: \(value)}\n".write(
                toFile: pgclone.directory + "/pgclone.yaml",
                atomically: true,
                encoding: .utf8
            )
            let wrong = try await pgclone.run(["ls"])
            #expect(wrong.exitCode == 2, "\(value): \(wrong)")
            #expect(
                wrong.errorLines.count == 1
                    && wrong.errorLines[0].hasPrefix("pgclone: error: pgclone.yaml: restore_configs.owned.role "),
                "\(value): \(wrong)"
            )
        }
        // They apply to dumps only: a database here is copied whole.
        let local = try await pgclone.run([
            "restore", ":\(source)", "--role", roles.owner, "--database", user.url("elsewhere"),
        ])
        #expect(local.exitCode == 2, "\(local)")
        #expect(
            local.errorLines == [
                """
                pgclone: error: --role applies to restoring a dump; :\(source) is a database on the server, \
                copied with its owners and privileges (see pgclone --help)
                """
            ],
            "\(local)"
        )
        try await server.dropDatabase(source)
    }

    /// PostgreSQL 16 and newer split membership into options: a member without SET may not give
    /// the new D its owner, one without INHERIT may not rename or drop D. Each is refused before
    /// anything is done, with the GRANT that fixes it.
    @Test(arguments: PostgresServer.all.filter { $0.label.hasSuffix("18") })
    func membershipWithoutSetOrInheritIsRefusedFirst(server: PostgresServer) async throws {
        let user = try await TestRole.application.user(on: server)
        let owner = try await server.createRole("appowner")
        let pgclone = try PGCloneHarness(server: user)
        let source = TestEnvironment.uniqueName("priv_opt")
        try await server.createDatabase(source)
        let key = try await pgclone.run(["dump", "--database", server.url(source)]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        let target = TestEnvironment.uniqueName("priv_optd")
        try await server.psql(
            "CREATE DATABASE \(quoteIdentifier(target)) TEMPLATE template0 OWNER \(quoteIdentifier(owner.user))"
        )
        let (o, u) = (quoteIdentifier(owner.user), quoteIdentifier(user.user))
        for (options, line) in [
            (
                "SET FALSE",
                """
                pgclone: error: role \"\(user.user)\" may not SET ROLE to \"\(owner.user)\", which owns \"\(target)\" \
                and must own the restored database too; GRANT \(o) TO \(u) WITH SET TRUE; \"\(target)\" is unchanged
                """
            ),
            (
                "INHERIT FALSE",
                """
                pgclone: error: role \"\(user.user)\" is a member of \"\(owner.user)\", which owns database \
                \"\(target)\", but does not have its privileges, which replacing it needs; GRANT \(o) TO \(u) WITH \
                INHERIT TRUE, or run pgclone as \"\(owner.user)\"; \"\(target)\" is unchanged
                """
            ),
        ] {
            try await server.psql("REVOKE \(o) FROM \(u); GRANT \(o) TO \(u) WITH \(options)")
            let refused = try await pgclone.restore(key, into: target)
            #expect(refused.exitCode == 2, "\(options): \(refused)")
            #expect(refused.errorLines == [line], "\(options): \(refused)")
            #expect(try await server.databases(startingWith: target) == [target])
        }
        for database in [source, target] { try await server.dropDatabase(database) }
    }
}
