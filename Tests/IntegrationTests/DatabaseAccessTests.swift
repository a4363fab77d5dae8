import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// A database's access properties — owner, database privileges, connection limit, comment —
/// belong to the environment: a restore over `D` keeps `D`'s, and a first restore takes the
/// source's, as far as its roles exist here.
@Suite(
    .serialized,
    .enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)")
)
struct DatabaseAccessTests {
    /// Owner, sorted privileges, connection limit and comment, as one line.
    static func access(_ server: PostgresServer, _ database: String) async throws -> String {
        try await server.psql(
            """
            SELECT pg_get_userbyid(d.datdba) || ' | ' ||
                   coalesce((SELECT string_agg(g, ',' ORDER BY g) FROM (
                                 SELECT coalesce(pg_get_userbyid(nullif(a.grantee, 0)), 'PUBLIC') || ':' || \
                                 a.privilege_type AS g
                                 FROM aclexplode(d.datacl) AS a) AS grants), 'default') || ' | ' ||
                   d.datconnlimit || ' | ' || coalesce(shobj_description(d.oid, 'pg_database'), '-')
            FROM pg_database AS d WHERE d.datname = \(server.literal(database))
            """
        )
    }

    @Test(arguments: PostgresServer.all, TestRole.allCases)
    func restoresKeepDsAccessAndAFirstRestoreTakesTheSources(server: PostgresServer, role: TestRole) async throws {
        let user = try await role.user(on: server)
        let owner = try await server.createRole("appowner")
        let reader = try await server.createRole("reader")
        let ghost = try await server.createRole("ghost")
        try await server.psql("GRANT \(quoteIdentifier(owner.user)) TO \(quoteIdentifier(user.user))")
        let pgclone = try PGCloneHarness(server: user)

        // The source: its owner's, closed to PUBLIC, open to reader and to a role the target
        // server will not have.
        let source = TestEnvironment.uniqueName("acc_src")
        try await server.createDatabase(source)
        try await server.psql(
            """
            CREATE TABLE t (v int); INSERT INTO t VALUES (1);
            """,
            database: source
        )
        let name = quoteIdentifier(source)
        try await server.psql(
            """
            ALTER DATABASE \(name) OWNER TO \(quoteIdentifier(owner.user));
            REVOKE ALL ON DATABASE \(name) FROM PUBLIC;
            GRANT CONNECT ON DATABASE \(name) TO \(quoteIdentifier(reader.user)), \(quoteIdentifier(ghost.user));
            ALTER DATABASE \(name) CONNECTION LIMIT 5;
            COMMENT ON DATABASE \(name) IS 'the source';
            """
        )
        let dumped = try await pgclone.run(["dump", "--database", server.url(source)])
        #expect(dumped.exitCode == 0, "\(dumped)")
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await server.psql(
            """
            REVOKE ALL ON DATABASE \(name) FROM \(quoteIdentifier(ghost.user)); DROP ROLE \
            \(quoteIdentifier(ghost.user))
            """
        )

        // A first restore: the source's, but for the missing role's grant.
        let fresh = TestEnvironment.uniqueName("acc_new")
        let created = try await pgclone.restore(key, into: fresh)
        #expect(created.exitCode == 0, "\(created)")
        let freshAccess = try await Self.access(server, fresh)
        #expect(
            freshAccess == """
                \(owner.user) | \
                \(owner.user):CONNECT,\(owner.user):CREATE,\(owner.user):TEMPORARY,\(reader.user):CONNECT | 5 | the \
                source
                """,
            "\(freshAccess)\n\(created)"
        )
        #expect(
            created.stderr.contains(
                """
                pgclone: warning: \"\(fresh)\" has the source's owner and database privileges but for: CONNECT for \
                \"\(ghost.user)\" (no such role here)
                """
            ),
            "\(created)"
        )

        // Over an existing D: D's own, after a restore of the dump and of a database here.
        let target = TestEnvironment.uniqueName("acc_dst")
        try await user.createDatabase(target)
        let targetName = quoteIdentifier(target)
        try await user.psql(
            """
            REVOKE CONNECT, TEMPORARY ON DATABASE \(targetName) FROM PUBLIC;
            ALTER DATABASE \(targetName) CONNECTION LIMIT 7;
            COMMENT ON DATABASE \(targetName) IS 'production';
            """
        )
        let before = try await Self.access(server, target)
        #expect(before.hasSuffix("| 7 | production"), "\(before)")
        for source in [key, ":\(fresh)"] {
            let restored = try await pgclone.restore(source, into: target)
            #expect(restored.exitCode == 0, "\(source): \(restored)")
            #expect(try await Self.access(server, target) == before, "\(source)")
        }
        for database in [source, fresh, target] { try await server.dropDatabase(database) }
    }

    /// An owner that revoked its own database privileges stays without them: over `D` (whose
    /// `D__temp` a superuser, or a member of the owner, makes with `D`'s owner), from an empty
    /// ACL, and in a first restore. `copy :NAME` makes a copy that is the source's owner's with
    /// the same privileges (where the role may make it so); a first restore from it does not carry
    /// the copy's marker comment (a database with one is pgclone's to drop).
    @Test(arguments: PostgresServer.all, TestRole.allCases)
    func anOwnersRevokedPrivilegesStayRevoked(server: PostgresServer, role: TestRole) async throws {
        let user = try await role.user(on: server)
        let owner = try await server.createRole("selfrevoked")
        let reader = try await server.createRole("reader")
        try await server.psql("GRANT \(quoteIdentifier(owner.user)) TO \(quoteIdentifier(user.user))")
        let pgclone = try PGCloneHarness(server: user)
        let target = TestEnvironment.uniqueName("rev_dst")
        try await server.createDatabase(target)
        try await server.psql(
            "CREATE TABLE t (v int); INSERT INTO t VALUES (1); ALTER TABLE t OWNER TO \(quoteIdentifier(owner.user))",
            database: target
        )
        let name = quoteIdentifier(target)
        try await server.psql(
            """
            ALTER DATABASE \(name) OWNER TO \(quoteIdentifier(owner.user));
            REVOKE ALL ON DATABASE \(name) FROM PUBLIC;
            REVOKE ALL ON DATABASE \(name) FROM \(quoteIdentifier(owner.user));
            GRANT CONNECT ON DATABASE \(name) TO \(quoteIdentifier(reader.user));
            """
        )
        if role == .application {
            // The application role connects as itself, not through the owner's privileges.
            try await server.psql("GRANT CONNECT ON DATABASE \(name) TO \(quoteIdentifier(user.user))")
        }
        let grants = ([reader.user] + (role == .application ? [user.user] : [])).map { "\($0):CONNECT" }.sorted()
        let expected = "\(owner.user) | \(grants.joined(separator: ",")) | -1 | -"
        #expect(try await Self.access(server, target) == expected)
        let key = try await pgclone.dump(target)
        // A hook that grants on D__temp does not make D more open either.
        let outsider = try await server.createRole("outsider")
        let grant = "GRANT CONNECT ON DATABASE :\"DBNAME\" TO \(quoteIdentifier(outsider.user))"
        let hook = "echo '\(grant)' | psql -v ON_ERROR_STOP=1"
        let restored = try await pgclone.restore(key, into: target, ["--pre-swap-hook", hook])
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await Self.access(server, target) == expected, "\(restored)")

        let fresh = TestEnvironment.uniqueName("rev_new")
        let created = try await pgclone.restore(key, into: fresh)
        #expect(created.exitCode == 0, "\(created)")
        #expect(try await Self.access(server, fresh) == expected, "\(created)")

        // No privileges at all (an empty ACL, not the default): none after.
        if role == .superuser {
            try await server.psql("REVOKE ALL ON DATABASE \(name) FROM \(quoteIdentifier(reader.user))")
            let acl = "SELECT datacl::text FROM pg_database WHERE datname = \(server.literal(target))"
            #expect(try await server.psql(acl) == "{}")
            let again = try await pgclone.restore(key, into: target)
            #expect(again.exitCode == 0, "\(again)")
            #expect(try await server.psql(acl) == "{}", "\(again)")
        }

        let copy = TestEnvironment.uniqueName("rev_copy")
        let copied = try await pgclone.run(["copy", ":\(copy)", "--database", user.url(fresh)])
        #expect(copied.exitCode == 0, "\(copied)")
        let fromCopy = TestEnvironment.uniqueName("rev_from_copy")
        let restoredCopy = try await pgclone.restore(":\(copy)", into: fromCopy)
        #expect(restoredCopy.exitCode == 0, "\(restoredCopy)")
        // The copy is the source's owner's, with the source's privileges exactly; and so is what
        // a first restore from it makes.
        let copyAccess = try await Self.access(server, copy)
        #expect(
            copyAccess.hasPrefix(expected.replacing(" | -1 | -", with: " | -1 | pgclone: copy of")),
            "\(copyAccess)"
        )
        let fromCopyAccess = try await Self.access(server, fromCopy)
        #expect(fromCopyAccess == expected, "\(fromCopyAccess)\n\(restoredCopy)")
        for database in [target, fresh, copy, fromCopy] { try await server.dropDatabase(database) }
    }

    /// A database privilege granted on from another role's grant option keeps its grantor (over
    /// `D`, and in a first restore), so revoking that role's option `CASCADE` still takes it; a
    /// role that may not act as the grantor grants it as the owner, and says so.
    @Test(arguments: PostgresServer.all, TestRole.allCases)
    func grantChainsKeepTheirGrantor(server: PostgresServer, role: TestRole) async throws {
        let user = try await role.user(on: server)
        let lead = try await server.createRole("lead")
        let member = try await server.createRole("member")
        let pgclone = try PGCloneHarness(server: user)
        let target = TestEnvironment.uniqueName("chain_dst")
        try await user.createDatabase(target)
        try await user.psql("CREATE TABLE t (v int)", database: target)
        let name = quoteIdentifier(target)
        let (leadName, memberName) = (quoteIdentifier(lead.user), quoteIdentifier(member.user))
        try await user.psql(
            """
            REVOKE ALL ON DATABASE \(name) FROM PUBLIC;
            GRANT CONNECT ON DATABASE \(name) TO \(leadName) WITH GRANT OPTION;
            """
        )
        try await server.psql("SET ROLE \(leadName); GRANT CONNECT ON DATABASE \(name) TO \(memberName)")
        let acl = "SELECT datacl::text FROM pg_database WHERE datname = $1"
        let before = try await server.psql(acl.replacing("$1", with: server.literal(target)))
        #expect(before.contains("\(member.user)=c/\(lead.user)"), "\(before)")
        let key = try await pgclone.dump(target)

        if role == .application {
            // Not a member of the grantor: granted by the owner, with a warning (a first restore
            // here, which leaves D's chain for the restore below).
            let elsewhere = TestEnvironment.uniqueName("chain_flat")
            let flattened = try await pgclone.restore(key, into: elsewhere)
            #expect(flattened.exitCode == 0, "\(flattened)")
            #expect(
                flattened.stderr.contains(
                    "CONNECT for \"\(member.user)\" (granted by \"\(lead.user)\") as granted by the owner"
                ),
                "\(flattened)"
            )
            let flatACL = try await server.psql(acl.replacing("$1", with: server.literal(elsewhere)))
            #expect(flatACL.contains("\(member.user)=c/\(user.user)"), "\(flatACL)")
            try await server.dropDatabase(elsewhere)
            try await server.psql("GRANT \(leadName) TO \(quoteIdentifier(user.user))")
        }
        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(!restored.stderr.contains("is granted by its owner"), "\(restored)")
        #expect(try await server.psql(acl.replacing("$1", with: server.literal(target))) == before, "\(restored)")
        let fresh = TestEnvironment.uniqueName("chain_new")
        let created = try await pgclone.restore(key, into: fresh)
        #expect(created.exitCode == 0, "\(created)")
        let freshACL = try await server.psql(acl.replacing("$1", with: server.literal(fresh)))
        #expect(freshACL.contains("\(member.user)=c/\(lead.user)"), "\(freshACL)\n\(created)")

        // The chain holds: revoking the lead's option takes the member's CONNECT with it.
        try await user.psql("REVOKE GRANT OPTION FOR CONNECT ON DATABASE \(name) FROM \(leadName) CASCADE")
        let memberConnects =
            "SELECT has_database_privilege(\(server.literal(member.user)), \(server.literal(target)), 'CONNECT')"
        #expect(try await server.psql(memberConnects) == "f")

        if role == .application {
            // Over D, by a role no longer a member of the grantor: by the owner, and said.
            try await user.psql("GRANT CONNECT ON DATABASE \(name) TO \(leadName) WITH GRANT OPTION")
            try await server.psql("SET ROLE \(leadName); GRANT CONNECT ON DATABASE \(name) TO \(memberName)")
            try await server.psql("REVOKE \(leadName) FROM \(quoteIdentifier(user.user))")
            let flattened = try await pgclone.restore(key, into: target, ["--json"])
            #expect(flattened.exitCode == 0, "\(flattened)")
            let json = try JSONSerialization.jsonObject(with: Data(flattened.stdout.utf8)) as? [String: Any]
            #expect(
                json?["database_access_not_restored"] as? [String] == [
                    "CONNECT for \"\(member.user)\" (granted by \"\(lead.user)\") as granted by the owner"
                ],
                "\(flattened.stdout)"
            )
            #expect(
                flattened.stderr.contains(
                    """
                    pgclone: warning: CONNECT for \"\(member.user)\" (granted by \"\(lead.user)\") on \"\(target)\" is \
                    granted by its owner: \"\(user.user)\" may not SET ROLE to the role that granted it
                    """
                ),
                "\(flattened)"
            )
        }
        for database in [target, fresh] { try await server.dropDatabase(database) }
    }

    /// A database's privileges as a set, default ones spelled out: grantee, privilege, grant
    /// option, grantor.
    static func grants(_ server: PostgresServer, _ database: String) async throws -> Set<String> {
        let rows = try await server.psql(
            """
            SELECT coalesce(pg_get_userbyid(nullif(a.grantee, 0)), 'PUBLIC') || ' ' || a.privilege_type || ' ' || \
            a.is_grantable || ' ' || pg_get_userbyid(a.grantor)
            FROM pg_database AS d CROSS JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) AS a
            WHERE d.datname = \(server.literal(database))
            """
        )
        return Set(rows.split(separator: "\n").map(String.init))
    }

    /// Privileges states that ordinary GRANTs and REVOKEs reach, replayed: a grant option given
    /// after it was granted from (its ACL entry after the one it allowed), a role that holds a
    /// privilege from the owner and its option from another role, and the default ACL with a
    /// hook's GRANT on D__temp. Each comes out the same over D, in a first restore, in a copy and
    /// in `--reversible`'s snapshot.
    @Test(arguments: PostgresServer.all)
    func privilegeStatesReplayExactly(server: PostgresServer) async throws {
        let pgclone = try PGCloneHarness(server: server)
        let (g1, g2, g3, reader) = (
            try await server.createRole("g1"), try await server.createRole("g2"), try await server.createRole("g3"),
            try await server.createRole("reader")
        )
        let (n1, n2, n3) = (quoteIdentifier(g1.user), quoteIdentifier(g2.user), quoteIdentifier(g3.user))
        for state in ["option_after", "held_twice", "default"] {
            let target = TestEnvironment.uniqueName("replay_\(state)")
            try await server.createDatabase(target)
            try await server.psql("CREATE TABLE t (v int)", database: target)
            let name = quoteIdentifier(target)
            if state != "default" {
                try await server.psql(
                    """
                    REVOKE ALL ON DATABASE \(name) FROM PUBLIC CASCADE;
                    GRANT CONNECT ON DATABASE \(name) TO \(n1) WITH GRANT OPTION;
                    GRANT CONNECT ON DATABASE \(name) TO \(n2) WITH GRANT OPTION;
                    SET ROLE \(n2); GRANT CONNECT ON DATABASE \(name) TO \(n3); RESET ROLE;
                    SET ROLE \(n1); GRANT CONNECT ON DATABASE \(name) TO \(n2) WITH GRANT OPTION; RESET ROLE;
                    """
                )
                try await server.psql(
                    state == "option_after"
                        ? "REVOKE CONNECT ON DATABASE \(name) FROM \(n2)"
                        : "REVOKE GRANT OPTION FOR CONNECT ON DATABASE \(name) FROM \(n2)"
                )
            }
            let before = try await Self.grants(server, target)
            let key = try await pgclone.dump(target)
            let grant = "GRANT CREATE ON DATABASE :\"DBNAME\" TO \(quoteIdentifier(reader.user))"
            let restored = try await pgclone.restore(
                key,
                into: target,
                ["--reversible", "--pre-swap-hook", "echo '\(grant)' | psql -v ON_ERROR_STOP=1"]
            )
            #expect(restored.exitCode == 0, "\(state): \(restored)")
            #expect(!restored.stderr.contains("granted by its owner"), "\(state): \(restored)")
            #expect(try await Self.grants(server, target) == before, "\(state)")
            #expect(try await Self.grants(server, "\(target)__current") == before, "\(state)")
            let fresh = TestEnvironment.uniqueName("replay_new")
            let created = try await pgclone.restore(key, into: fresh, ["--pre-swap-hook", "echo '\(grant)' | psql"])
            #expect(created.exitCode == 0, "\(state): \(created)")
            #expect(try await Self.grants(server, fresh) == before, "\(state): \(created)")
            let copy = TestEnvironment.uniqueName("replay_copy")
            let copied = try await pgclone.run(["copy", ":\(copy)", "--database", server.url(target)])
            #expect(copied.exitCode == 0, "\(state): \(copied)")
            #expect(try await Self.grants(server, copy) == before, "\(state)")
            for database in [target, "\(target)__current", "\(target)__previous", fresh, copy] {
                try await server.psql("DROP DATABASE IF EXISTS \(quoteIdentifier(database))")
            }
        }
    }
}
