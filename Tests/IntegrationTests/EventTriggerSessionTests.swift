import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// How pgclone's own statements keep clear of a database's event triggers, and leave them as
/// they were whatever happens to those statements.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct EventTriggerSessionTests {
    private static let states =
        "SELECT string_agg(evtname || '=' || evtenabled::text, ',' ORDER BY evtname) FROM pg_event_trigger"

    /// Inside the transaction, the enabled triggers are disabled before PostgreSQL 17 (and left
    /// alone from 17, where the session turns them off); after it, whether it committed, failed
    /// or lost its session, every trigger is as it was. Disabled and enabled in separate
    /// statements, a lost session left them disabled.
    @Test(arguments: PostgresServer.all)
    func theTriggersEndAsTheyWereWhateverHappens(server: PostgresServer) async throws {
        let database = TestEnvironment.uniqueName("evt_session")
        try await server.createDatabase(database)
        try await server.psql(
            """
            CREATE FUNCTION f() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
            CREATE EVENT TRIGGER a_origin ON ddl_command_start EXECUTE FUNCTION f();
            CREATE EVENT TRIGGER b_always ON ddl_command_start EXECUTE FUNCTION f();
            ALTER EVENT TRIGGER b_always ENABLE ALWAYS;
            CREATE EVENT TRIGGER c_replica ON ddl_command_start EXECUTE FUNCTION f();
            ALTER EVENT TRIGGER c_replica ENABLE REPLICA;
            CREATE EVENT TRIGGER d_disabled ON ddl_command_start EXECUTE FUNCTION f();
            ALTER EVENT TRIGGER d_disabled DISABLE;
            """,
            database: database
        )
        let before = "a_origin=O,b_always=A,c_replica=R,d_disabled=D"
        #expect(try await server.psql(Self.states, database: database) == before)
        let session = try await server.connect(database)
        let inside = try await session.inTransactionWithEventTriggersDisabled {
            try await session.query(Self.states).first?.first ?? nil
        }
        let newer = try await session.serverVersion >= 170_000
        #expect(inside == (newer ? before : "a_origin=D,b_always=D,c_replica=D,d_disabled=D"))
        #expect(try await server.psql(Self.states, database: database) == before)

        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            try await session.inTransactionWithEventTriggersDisabled { throw Refused() }
        }
        #expect(try await server.psql(Self.states, database: database) == before)

        // A statement failing alone leaves the transaction going.
        try await session.inTransactionWithEventTriggersDisabled {
            await #expect(throws: LibPQError.self) { try await session.executeInSavepoint("SELECT 1/0") }
            try await session.executeInSavepoint("CREATE TABLE kept ()")
        }
        #expect(
            try await server.psql("SELECT count(*) FROM pg_class WHERE relname = 'kept'", database: database) == "1"
        )

        // The session ends between the disabling and the enabling.
        await #expect(throws: LibPQError.self) {
            try await session.inTransactionWithEventTriggersDisabled {
                try await server.psql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(server.literal(database))"
                )
                try await session.execute("SELECT 1")
            }
        }
        await session.close()
        #expect(try await server.psql(Self.states, database: database) == before)
    }
}
