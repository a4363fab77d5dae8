import Logging

extension RestorePipeline {
    /// Drops the schema `public` of `database` (`D__temp`), whose source had none.
    ///
    /// A new database has `public` from `template0`, and an archive cannot say the source dropped
    /// it: pg_dump leaves `public` out unless it differs from its default. Kept, it would give
    /// every role `USAGE` on a schema the source did not have (and, on PostgreSQL 14 and older,
    /// `CREATE`). A role that may not drop it (PostgreSQL 14 and older make it the bootstrap
    /// superuser's) keeps it with a warning, as does one that finds something in it.
    /// - Throws: ``LibPQError`` for any other failure (a connection refused, a session ended).
    func dropPublicSchema(of database: String) async throws {
        let session = try await PostgresConnection.connect(connection.replacingDatabase(database))
        do {
            if let role = restoreConfig.role { try await session.execute("SET ROLE \(quoteIdentifier(role))") }
            try await session.execute("DROP SCHEMA IF EXISTS public")
        } catch let error as LibPQError where ["42501", "2BP01"].contains(error.sqlState) {
            logger.warning(
                """
                the source database has no schema public, but \"\(database)\" has one that this restore \
                could not drop (\(error.message)); drop it from the restored database yourself
                """
            )
        } catch {
            await session.close()
            throw error
        }
        await session.close()
    }
}
