import Logging
import PGCloneStreams

extension RestorePipeline {
    /// Drops from `database` (`D__temp`, just created from `template0`) the objects every new
    /// database has but the source had dropped: the schema `public` and the extension `plpgsql`.
    ///
    /// An archive cannot say they are gone: pg_dump leaves both out unless they differ from their
    /// defaults, so the dump's metadata records them (``DumpMetadata/publicSchema``,
    /// ``DumpMetadata/plpgsql``; `nil` in dumps of earlier releases, which keep them). Kept, they
    /// would give every role what the source did not: `USAGE` on `public` (and, on PostgreSQL 14
    /// and older, `CREATE`), and `USAGE` on the language plpgsql. This runs before pg_restore
    /// makes the source's event triggers, which would otherwise see the drops. A role that may not
    /// drop one (both belong to the bootstrap superuser, except `public` on PostgreSQL 15 and
    /// newer) keeps it with a warning naming `target`, as does one that finds something in it.
    /// - Throws: ``LibPQError`` for any other failure (a connection refused, a session ended).
    func dropTemplateObjects(_ metadata: DumpMetadata?, of database: String, target: String) async throws {
        // What to drop (IF EXISTS, here; as a warning gives it, without).
        var drops: [(kind: String, name: String)] = []
        if metadata?.publicSchema == false { drops.append(("SCHEMA", "public")) }
        if metadata?.plpgsql == false { drops.append(("EXTENSION", "plpgsql")) }
        guard !drops.isEmpty else { return }
        let session = try await PostgresConnection.connect(connection.replacingDatabase(database))
        do {
            if let role = restoreConfig.role { try await session.execute("SET ROLE \(quoteIdentifier(role))") }
            for (kind, name) in drops {
                do {
                    try await session.execute("DROP \(kind) IF EXISTS \(name)")
                } catch let error as LibPQError where ["42501", "2BP01"].contains(error.sqlState) {
                    // Refused, the role cannot: it takes a superuser (or, for public, its owner).
                    let remedy =
                        error.isInsufficientPrivilege
                        ? "a superuser can drop it there: DROP \(kind) \(name)" : "drop it there yourself"
                    logger.warning(
                        """
                        the source database has no \(kind.lowercased()) \(name), but every new database has it and \
                        this restore could not drop it (\(error.message)): \"\(target)\" keeps it; \(remedy)
                        """
                    )
                }
            }
        } catch {
            await session.close()
            throw error
        }
        await session.close()
    }
}

extension RestorePipeline {
    /// Says, a line each, where PUBLIC has more privileges on an object every new database has
    /// (`LANGUAGE plpgsql`, `SCHEMA public`) in `database` (`D__temp`, restored) than the source
    /// gave it (`source`, ``DumpMetadata/publicPrivileges``): the dump's REVOKE takes effect only
    /// for the object's owner or a superuser (the bootstrap superuser owns both, but for `public`
    /// on PostgreSQL 15 and newer), and pg_restore says nothing when it does not (the server's
    /// WARNING goes to its verbose output only). The session opens with the source's event
    /// triggers off where it may (``PostgresConnection/eventTriggersOffAtLogin()``); one the
    /// source's login trigger refuses says the check could not be made.
    /// - Throws: ``LibPQError`` if `database` cannot be read.
    func warnWherePublicKeepsMore(
        than source: [String: [String]]?,
        in database: String,
        target: String,
        admin: PostgresConnection
    ) async throws {
        guard let source else { return }
        let session: PostgresConnection
        do {
            session = try await PostgresConnection.connect(
                connection.replacingDatabase(database).addingSessionSettings(
                    try await admin.eventTriggersOffAtLogin(),
                    environment: environment
                )
            )
        } catch let error as LibPQError where error.connectionFailure != nil {
            logger.warning(
                "could not check PUBLIC's privileges on schema public and language plpgsql in \"\(target)\": \(error)"
            )
            return
        }
        do {
            let restored = try await session.publicPrivilegesOnTemplateObjects()
            for (object, privileges) in restored.sorted(by: { $0.key < $1.key }) {
                guard let granted = source[object] else { continue }
                let kept = privileges.filter { !granted.contains($0) }.joined(separator: ", ")
                guard !kept.isEmpty else { continue }
                let ownerQuery =
                    object.hasPrefix("LANGUAGE")
                    ? "SELECT lanowner FROM pg_catalog.pg_language WHERE lanname = 'plpgsql'"
                    : "SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'public'"
                let owner =
                    try await session.query("SELECT pg_catalog.pg_get_userbyid((\(ownerQuery)))").first?.first ?? nil
                logger.warning(
                    """
                    PUBLIC keeps \(kept) on \(object) in \"\(target)\", which the source revoked: only its owner \
                    (\"\(owner ?? "?")\") or a superuser may revoke it here; have one run in \"\(target)\": REVOKE \
                    \(kept) ON \(object) FROM PUBLIC
                    """
                )
            }
        } catch {
            await session.close()
            throw error
        }
        await session.close()
    }
}

extension RestorePipeline {
    /// Says in one line which objects keep privileges the dump revoked: pg_restore's REVOKE had no
    /// effect (``RestoreRunner/Report/unrevoked``) for the restoring role does not own them here,
    /// as an extension's functions, which belong to the bootstrap superuser when a role that is
    /// not one creates a trusted extension. `LANGUAGE plpgsql` and `SCHEMA public` are left to
    /// ``warnWherePublicKeepsMore(than:in:target:admin:)``, which says what to run.
    func warnUnrevoked(_ report: RestoreRunner.Report, restoringRole: String, target: String) {
        let templateObjects: Set<String> = ["LANGUAGE plpgsql", "SCHEMA public"]
        var (all, count) = report.revokesWithoutEffect
        let named = all.filter { !templateObjects.contains($0) }
        count -= all.count - named.count
        guard count > 0 else { return }
        let listed = named.prefix(5).joined(separator: ", ") + (count > 5 ? " and \(count - 5) more" : "")
        let objects = count == 1 ? listed : "\(counted(count, "object")) (\(listed))"
        logger.warning(
            """
            the dump's REVOKE had no effect on \(objects) in \"\(target)\", which \"\(restoringRole)\" does not own \
            here: \(count == 1 ? "it keeps" : "they keep") privileges the source revoked; restore as a superuser or \
            as \(count == 1 ? "its" : "their") owner
            """
        )
    }
}
