import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// A REVOKE of the dump's that has no effect here, on an object the restoring role does not own.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct UnrevokedPrivilegeTests {
    /// A trusted extension an application role creates belongs to the bootstrap superuser, so the
    /// dump's REVOKE EXECUTE on one of its functions has no effect in an application role's
    /// restore (the server only warns, and pg_restore prints that only with --verbose): PUBLIC
    /// keeps EXECUTE, which one warning line now says. A superuser's restore revokes it.
    @Test(arguments: PostgresServer.all, TestRole.allCases)
    func aRevokeWithoutEffectIsSaid(server: PostgresServer, role: TestRole) async throws {
        let user = try await role.user(on: server)
        let pgclone = try PGCloneHarness(server: user)
        let source = TestEnvironment.uniqueName("unrev_src")
        try await user.createDatabase(source)
        try await user.psql("CREATE EXTENSION fuzzystrmatch", database: source)
        try await server.psql("REVOKE EXECUTE ON FUNCTION soundex(text) FROM PUBLIC", database: source)
        let key = try await pgclone.dump(source)
        let target = TestEnvironment.uniqueName("unrev_dst")
        let publicExecute = """
            SELECT count(*) FROM pg_proc AS p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
            WHERE p.proname = 'soundex' AND a.grantee = 0
            """
        for extra in [["--json"], ["--jobs", "2"]] {
            let restored = try await pgclone.restore(key, into: target, extra)
            #expect(restored.exitCode == 0, "\(restored)")
            let warnings = restored.stderrLines.filter { $0.contains("REVOKE") }
            if extra == ["--json"] {
                let json = try JSONSerialization.jsonObject(with: Data(restored.stdout.utf8)) as? [String: Any]
                #expect(
                    json?["revokes_without_effect"] as? [String]
                        == (role == .superuser ? [] : ["FUNCTION public.soundex(text)"]),
                    "\(restored)"
                )
            }
            switch role {
            case .superuser:
                #expect(warnings.isEmpty, "\(restored)")
                #expect(try await server.psql(publicExecute, database: target) == "0", "\(extra)")
            case .application:
                #expect(
                    warnings == [
                        """
                        pgclone: warning: the dump's REVOKE had no effect on FUNCTION public.soundex(text) in \
                        "\(target)", which "\(user.user)" does not own here: it keeps privileges the source \
                        revoked; restore as a superuser or as its owner
                        """
                    ],
                    "\(extra): \(restored)"
                )
                #expect(try await server.psql(publicExecute, database: target) == "1", "\(extra)")
            }
        }
    }

    /// The same REVOKE beside a GRANT to a role this server lacks, which fails pg_restore's
    /// statement whole: pgclone runs the entry again one statement at a time, and its REVOKE
    /// had no effect either, which the server's WARNING to pgclone's own session said.
    @Test(arguments: PostgresServer.all)
    func aRevokeRunAgainWithoutEffectIsSaid(server: PostgresServer) async throws {
        let user = try await TestRole.application.user(on: server)
        let pgclone = try PGCloneHarness(server: user)
        let ghost = try await server.createRole("ghost")
        let source = TestEnvironment.uniqueName("unrev2_src")
        try await user.createDatabase(source)
        try await user.psql("CREATE EXTENSION fuzzystrmatch", database: source)
        try await server.psql(
            """
            REVOKE EXECUTE ON FUNCTION soundex(text) FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION soundex(text) TO \(quoteIdentifier(ghost.user));
            """,
            database: source
        )
        let key = try await pgclone.dump(source)
        try await server.dropDatabase(source)
        try await server.psql("DROP ROLE \(quoteIdentifier(ghost.user))")
        let target = TestEnvironment.uniqueName("unrev2_dst")
        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(
            restored.stderrLines.filter { $0.contains("REVOKE") } == [
                """
                pgclone: warning: the dump's REVOKE had no effect on FUNCTION public.soundex(text) in \
                "\(target)", which "\(user.user)" does not own here: it keeps privileges the source revoked; \
                restore as a superuser or as its owner
                """
            ],
            "\(restored)"
        )
    }
}
