import PGCloneStreams

/// Gives the restored objects the dump's owners and privileges as far as this server's roles
/// allow, judging pg_restore's errors as they come:
/// - An owner change (`ALTER … OWNER TO r`) refused because `r` does not exist here, or the
///   restoring role may not make `r` an owner, leaves the object to the restoring role (the
///   `--role`, or the connecting one): counted per role, not an error.
/// - pg_restore runs an object's privileges (its ACL entry: REVOKEs and GRANTs) as one statement,
///   so one GRANT to a missing role undoes the entry's other GRANTs and its REVOKEs (a function
///   would be executable by PUBLIC again). Such an entry is run again here statement by
///   statement: those refused for a role (missing, or not one the restoring role may act as) are
///   skipped and counted, the others applied; any other failure is an error.
///   Before PostgreSQL 17 that is once pg_restore has ended (``retryDeferred()``), with the
///   source's event triggers, which pg_restore makes last, disabled around it.
/// - A materialized view's REFRESH that failed (pg_restore refreshes right after the privileges,
///   before those replayed here are in) is run again once pg_restore has ended
///   (``retryDeferred()``); if it fails again, that is the error.
///
/// The replay session opens at the first failed entry, on the database being restored, with
/// pg_restore's settings (an empty `search_path`, the `--role`).
package actor PrivilegeRestore {
    private let connection: ConnectionSettings
    private let role: String?
    /// Checks the session it opens is on the database restored into (``DatabaseSwap/confirmConnected(_:)``).
    private let confirmSession: (@Sendable (PostgresConnection) async throws -> Void)?
    private var session: PostgresConnection?
    private var report: PrivilegeReport
    /// Failed privileges (before PostgreSQL 17) and materialized view refreshes, in pg_restore's
    /// order, to run again at the end.
    private var deferred: [ChildStderr.Entry] = []
    static let maximumDeferred = 10_000

    /// - Parameters:
    ///   - connection: the database pg_restore restores into.
    ///   - role: `--role`.
    ///   - restoringRole: the role that owns what is not given away: `role`, or the connecting one.
    ///   - confirmSession: checks that the session it opens is on the database restored into.
    package init(
        connection: ConnectionSettings,
        role: String?,
        restoringRole: String,
        confirmSession: (@Sendable (PostgresConnection) async throws -> Void)? = nil
    ) {
        self.connection = connection
        self.role = role
        self.confirmSession = confirmSession
        self.report = PrivilegeReport(restoringRole: restoringRole)
    }

    /// What `entry`, a pg_restore error, amounts to, or `nil` if it is none of this type's.
    package func judge(_ entry: ChildStderr.Entry) async -> ChildStderr.Disposition? {
        if let statement = entry.statement, let owner = PrivilegeStatements.newOwner(in: statement),
            let refusal = PrivilegeStatements.ownerRefusal(entry.serverMessage)
        {
            report.add(.owner, role: owner, refusal)
            return .handled
        }
        if PrivilegeStatements.isMaterializedViewData(entry.tocEntry), entry.command != nil,
            deferred.count < Self.maximumDeferred
        {
            deferred.append(entry)
            return .handled
        }
        guard PrivilegeStatements.isACLEntry(entry.tocEntry), let command = entry.command,
            let statements = PrivilegeStatements.split(command)
        else { return nil }
        // Before PostgreSQL 17, whose sessions may turn event triggers off, run again once
        // pg_restore has ended: the source's event triggers, which it makes after the privileges,
        // are all there then, to be disabled around these statements (one made meanwhile fired).
        if deferred.count < Self.maximumDeferred, let session = try? await openSession(),
            await session.serverVersion < 170_000
        {
            deferred.append(entry)
            return .handled
        }
        return await replay(statements, of: entry)
    }

    /// Those of `owners` the restoring role may not make an object's owner here: roles that do
    /// not exist, and, unless the restoring role is a superuser, roles it is not a member of (with
    /// the SET option on PostgreSQL 16 and newer).
    package func unassignable(_ owners: Set<String>) async throws -> [String] {
        // On the replay session, whose role is the restoring one (after `--role`'s SET ROLE).
        let session = try await openSession()
        var refused: [String] = []
        for owner in owners.sorted() where !(try await session.maySetRole(owner)) {
            refused.append(owner)
        }
        return refused
    }

    /// Runs the deferred entries again, in pg_restore's order: the privileges (before PostgreSQL
    /// 17), then the failed materialized view refreshes, now that the privileges are in (one view
    /// may read another); returns those that fail again.
    package func retryDeferred() async -> [ChildStderr.Entry] {
        let entries = deferred
        deferred = []
        var failed: [ChildStderr.Entry] = []
        for entry in entries {
            guard let statements = entry.command.flatMap(PrivilegeStatements.split) else {
                failed.append(entry)
                continue
            }
            switch await replay(statements, of: entry) {
            case .failed(let again): failed.append(again)
            case .error: failed.append(entry)
            default: break
            }
        }
        return failed
    }

    /// What could not be given as the dump has it; closes the replay session.
    package func finish() async -> PrivilegeReport {
        await session?.close()
        session = nil
        return report
    }

    private func replay(_ statements: [String], of entry: ChildStderr.Entry) async -> ChildStderr.Disposition {
        var lost: any Error = LibPQError(sqlState: nil, message: "no session")
        // A session lost mid-entry (ended by someone) rolled the entry back whole: once more on
        // a new one. A second loss is the entry's error, said as such, not as pg_restore's.
        for _ in 1...2 {
            let session: PostgresConnection
            do {
                session = try await openSession()
            } catch {
                lost = error
                continue
            }
            // What the attempt counts goes with it, if it is lost.
            let counted = report
            // One transaction per entry, in which the source's event triggers are disabled before
            // PostgreSQL 17 (which turns them off for the session): a lost session leaves them as
            // they were. Each statement may fail alone (a savepoint each).
            do {
                return try await session.inTransactionWithEventTriggersDisabled {
                    let (disposition, changedAuthorization) = try await run(statements, of: entry, on: session)
                    if changedAuthorization {
                        try await session.execute("RESET SESSION AUTHORIZATION")
                        // A grantor's role (SET ROLE) as well as a session authorization goes.
                        try await session.execute(role.map { "SET ROLE \(quoteIdentifier($0))" } ?? "RESET ROLE")
                    }
                    return disposition
                }
            } catch let error as LibPQError where error.connectionLost {
                await session.close()
                self.session = nil
                report = counted
                lost = error
            } catch {
                return .error
            }
        }
        var failed = entry
        failed.message = """
            the session running the dump's privileges again, for roles this server lacks, was lost twice \
            (\(lost)): its object would keep PUBLIC's default privileges
            """
        (failed.detail, failed.hint, failed.context, failed.statement) = (nil, nil, nil, nil)
        (failed.program, failed.replayLost) = ("pgclone", true)
        return .failed(failed)
    }

    /// Runs `statements` one by one; says too whether one of them changed the session's role.
    private func run(
        _ statements: [String],
        of entry: ChildStderr.Entry,
        on session: PostgresConnection
    ) async throws -> (ChildStderr.Disposition, changedAuthorization: Bool) {
        var changedAuthorization = false
        // The role whose grants are being made by the owner instead, and why.
        var grantedForRole: (role: String, refusal: PrivilegeStatements.Refusal)?
        for statement in statements {
            do {
                let warnings = try await session.executeInSavepoint(statement)
                if statement.hasPrefix("REVOKE "),
                    warnings.contains(where: { $0.contains("privileges could be revoked") }),
                    let object = PrivilegeStatements.revokedObject(in: statement)
                {
                    report.addUnrevoked(object)
                }
                if statement.hasPrefix("SET SESSION AUTHORIZATION") { changedAuthorization = true }
                if statement.hasPrefix("RESET SESSION AUTHORIZATION") { grantedForRole = nil }
                if let grantedForRole, statement.hasPrefix("GRANT ") {
                    report.add(.grantor, role: grantedForRole.role, grantedForRole.refusal)
                }
            } catch let error as LibPQError
                where statement.hasPrefix("SET SESSION AUTHORIZATION") && !error.connectionLost
            {
                // The grants a role other than the owner made from its grant option: made as that
                // role where this one may SET ROLE to it (so that revoking its option CASCADE still
                // takes them); else by the owner, with the same privileges, and said.
                guard let grantor = PrivilegeStatements.sessionAuthorization(in: statement) else { continue }
                do {
                    try await session.executeInSavepoint("SET ROLE \(quoteIdentifier(grantor))")
                    changedAuthorization = true
                } catch let refused as LibPQError where !refused.connectionLost {
                    let missing = refused.message.hasSuffix("does not exist")
                    grantedForRole = (grantor, missing ? .missingRole : .notAMember)
                }
                continue
            } catch let error as LibPQError where error.connectionLost {
                throw error
            } catch let error as LibPQError {
                if let (role, refusal) = PrivilegeStatements.refusedRole(in: error.message) {
                    report.add(.privilege, role: role, refusal)
                } else if error.message.hasPrefix("permission denied to change default privileges"),
                    let role = PrivilegeStatements.defaultPrivilegesRole(in: statement)
                {
                    report.add(.privilege, role: role, .notAMember)
                } else {
                    let failed = ChildStderr.Entry(
                        message: "could not execute query: ERROR: \(error.message)",
                        tocEntry: entry.tocEntry,
                        detail: error.detail,
                        hint: error.hint,
                        context: error.context,
                        statement: statement.split(separator: "\n").first.map(String.init)
                    )
                    return (.failed(failed), changedAuthorization)
                }
            } catch {
                return (.error, changedAuthorization)
            }
        }
        return (.handled, changedAuthorization)
    }

    private func openSession() async throws -> PostgresConnection {
        if let session { return session }
        let opened = try await PostgresConnection.connect(connection)
        do {
            try await confirmSession?(opened)
            // As pg_restore's own sessions: every name in its statements is schema-qualified.
            try await opened.execute("SELECT pg_catalog.set_config('search_path', '', false)")
            // pg_restore has made the source's event triggers by now (they come last).
            try await opened.turnOffEventTriggers()
            if let role { try await opened.execute("SET ROLE \(quoteIdentifier(role))") }
        } catch {
            await opened.close()
            throw error
        }
        session = opened
        return opened
    }
}

/// The owners and privileges of the dump a restore could not give as the dump has them, by role.
package struct PrivilegeReport: Sendable, Hashable {
    package enum Kind: Sendable, Hashable {
        /// An object left to the restoring role.
        case owner
        /// A GRANT, REVOKE or default privilege skipped.
        case privilege
        /// A GRANT another role made from its grant option, made by the owner instead.
        case grantor
    }

    package struct Tally: Sendable, Hashable {
        package var role: String
        package var refusal: PrivilegeStatements.Refusal
        package var count: Int
    }

    /// The role that owns the objects whose owner was not given to them.
    package var restoringRole: String
    /// Objects owned by roles this server lacks or the restoring role may not make owners.
    package private(set) var owners: [Tally] = []
    /// Privileges naming such roles.
    package private(set) var privileges: [Tally] = []
    /// Grants such roles made from their grant option, which the objects' owners made instead.
    package private(set) var grantors: [Tally] = []
    /// Objects a REVOKE run again here had no effect on (the restoring role does not own them:
    /// the server only warns), as the REVOKE names them (`FUNCTION public.f(text)`), each once.
    package private(set) var unrevoked: [String] = []
    private var unrevokedSeen: Set<String> = []

    /// Counts `object` among ``unrevoked`` (once; up to ``ChildStderr/maximumUnrevoked``).
    package mutating func addUnrevoked(_ object: String) {
        guard unrevokedSeen.count < ChildStderr.maximumUnrevoked, unrevokedSeen.insert(object).inserted else { return }
        unrevoked.append(object)
    }

    package init(restoringRole: String) {
        self.restoringRole = restoringRole
    }

    package var isEmpty: Bool { owners.isEmpty && privileges.isEmpty && grantors.isEmpty }

    package mutating func add(_ kind: Kind, role: String, _ refusal: PrivilegeStatements.Refusal) {
        switch kind {
        case .owner: Self.add(&owners, role: role, refusal)
        case .privilege: Self.add(&privileges, role: role, refusal)
        case .grantor: Self.add(&grantors, role: role, refusal)
        }
    }

    private static func add(_ tallies: inout [Tally], role: String, _ refusal: PrivilegeStatements.Refusal) {
        if let index = tallies.firstIndex(where: { $0.role == role && $0.refusal == refusal }) {
            tallies[index].count += 1
        } else if tallies.count < 100 {
            tallies.append(Tally(role: role, refusal: refusal, count: 1))
        }
    }

    /// One line: `3 objects of "gone" (no such role here) belong to "app"; 2 privileges of "gone"
    /// (no such role here) were skipped`; `nil` if everything was given.
    package var summary: String? {
        guard !isEmpty else { return nil }
        var parts: [String] = []
        if !owners.isEmpty {
            parts.append(
                """
                \(list(owners, noun: "object")) belong\(owners.count == 1 && owners[0].count == 1 ? "s" : "") to \
                \"\(restoringRole)\"
                """
            )
        }
        if !privileges.isEmpty {
            parts.append(
                """
                \(list(privileges, noun: "privilege")) \
                \(privileges.count == 1 && privileges[0].count == 1 ? "was" : "were") skipped
                """
            )
        }
        if !grantors.isEmpty {
            parts.append(
                """
                \(list(grantors, noun: "grant")) from \(grantors.count == 1 ? "its" : "their") grant option \
                \(grantors.count == 1 && grantors[0].count == 1 ? "was" : "were") made by the objects' owners \
                (revoking that option no longer takes \(grantors.count == 1 && grantors[0].count == 1 ? "it" : "them"))
                """
            )
        }
        return """
            owners and privileges as in the dump, but for roles this server lacks or \"\(restoringRole)\" may not act \
            as: 
            """ + parts.joined(separator: "; ")
    }

    private func list(_ tallies: [Tally], noun: String) -> String {
        let sorted = tallies.sorted { ($0.count, $1.role) > ($1.count, $0.role) }
        var items = sorted.prefix(8).map { tally in
            "\(counted(tally.count, noun)) of \"\(tally.role)\" (\(reason(tally.refusal)))"
        }
        if sorted.count > 8 {
            items.append("\(sorted.dropFirst(8).reduce(0) { $0 + $1.count }) more of \(sorted.count - 8) other roles")
        }
        return items.count <= 2
            ? items.joined(separator: " and ") : items.dropLast().joined(separator: ", ") + " and " + items.last!
    }

    private func reason(_ refusal: PrivilegeStatements.Refusal) -> String {
        switch refusal {
        case .missingRole: "no such role here"
        case .notAMember: "\"\(restoringRole)\" may not SET ROLE to it"
        case .other(let message): message
        }
    }
}
