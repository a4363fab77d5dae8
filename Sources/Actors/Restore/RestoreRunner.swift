import Foundation
import NIOCore
package import PGCloneStreams
package import Subprocess

/// The Restore stage: the archive streamed into pg_restore's stdin while its stderr is read
/// concurrently; errors are judged as they come, counted and kept with their statements, and the
/// exit status checked.
///
/// Streaming means one job: pg_restore cannot restore in parallel from stdin. `restore --jobs N`
/// spools the archive to a file first and runs `pg_restore -j N` on it.
///
/// An actor: for the length of a job it owns the pg_restore child (its stdin writer and its stderr
/// reader) and the privilege replay's session. The whole archive is written into pg_restore within
/// one isolated call, never one hop per chunk. It makes no blocking call (pipes are written and
/// read asynchronously), so it runs on the shared pool.
package actor RestoreRunner {
    /// The pg_restore programs to choose from, by the archive's version (read from its first
    /// bytes before pg_restore starts).
    let installations: PostgresInstallations
    /// The major version of the server restored into (`nil`: none, `verify`), whose own
    /// pg_restore is preferred when it can read the archive.
    let serverMajor: Int?
    /// Where to restore: the temporary database, or nowhere (`verify` reads the archive through
    /// pg_restore to its end, writing the script to /dev/null).
    let connection: ConnectionSettings?

    /// What pg_restore restores of owners and privileges, unless ``beforeStart`` says.
    let ownership = OwnershipOptions.none
    /// Judges the errors about owners and privileges as they come, and replays ACL entries.
    let privilegeRestore: PrivilegeRestore?

    /// Told when writing into pg_restore's stdin waits for the pipe (PostgreSQL is the limit).
    private let stdinWaiting: (@Sendable (Bool) -> Void)?
    /// Run once the archive's first bytes have come, before pg_restore starts (the restore makes
    /// `D__temp` then, with the locale the dump's metadata, read by then, names); returns what to
    /// restore of owners and privileges, which the metadata says too.
    let beforeStart: (@Sendable () async throws -> OwnershipOptions)?
    /// Run before each pg_restore that connects starts: checks that this run may still restore
    /// into the database it connects to by name (``DatabaseSwap/confirmTemporary()``).
    let confirmTarget: (@Sendable () async throws -> Void)?

    package init(
        installations: PostgresInstallations,
        serverMajor: Int?,
        connection: ConnectionSettings?,
        privilegeRestore: PrivilegeRestore? = nil,
        stdinWaiting: (@Sendable (Bool) -> Void)? = nil,
        beforeStart: (@Sendable () async throws -> OwnershipOptions)? = nil,
        confirmTarget: (@Sendable () async throws -> Void)? = nil
    ) {
        self.installations = installations
        self.serverMajor = serverMajor
        self.connection = connection
        self.privilegeRestore = privilegeRestore
        self.stdinWaiting = stdinWaiting
        self.beforeStart = beforeStart
        self.confirmTarget = confirmTarget
    }

    /// What pg_restore did.
    package struct Report: Sendable {
        /// Errors pg_restore reported (it carries on after most of them), but harmless ones.
        package var errorCount: Int
        /// The first errors, each with its statement.
        package var errors: [ChildStderr.Entry]
        /// Errors known to do no harm (``KnownRestoreErrors``): how many, by why.
        package var harmless: [String: Int] = [:]
        /// Owners and privileges not given as the dump has them.
        package var privileges: PrivilegeReport?
        /// Archive bytes written into pg_restore's stdin.
        package var bytesWritten: Int
        /// The pg_restore that ran.
        package var pgRestore = ""
        /// `--jobs` restored in one session: the dump names owners this server lacks or the
        /// restoring role may not assign.
        package var serialForOwners = false
        /// A restore in pieces: what loading them took.
        package var pieces: PieceLoader.Report?
        /// Objects a REVOKE of the dump left as they were (``ChildStderr/unrevoked``), and how many.
        package var unrevoked: [String] = []
        package var unrevokedCount = 0
        /// All of them (``ChildStderr/unrevokedSeen``), for pgclone's own to count once.
        package var unrevokedSeen: Set<String> = []

        /// Objects a REVOKE of the dump had no effect on, pg_restore's and those of the privileges
        /// pgclone ran again (the same object for an entry whose statement failed after its
        /// REVOKE): the names, and how many in all.
        package var revokesWithoutEffect: (objects: [String], count: Int) {
            var objects = unrevoked
            var count = unrevokedCount
            for object in privileges?.unrevoked ?? [] where !unrevokedSeen.contains(object) {
                objects.append(object)
                count += 1
            }
            return (Array(objects.prefix(ChildStderr.maximumEntries)), count)
        }

        /// This report and `next`'s, of a second pg_restore on the same database.
        func merging(_ next: Report) -> Report {
            var merged = self
            merged.errorCount += next.errorCount
            merged.errors = Array((errors + next.errors).prefix(ChildStderr.maximumEntries))
            merged.harmless.merge(next.harmless, uniquingKeysWith: +)
            merged.bytesWritten += next.bytesWritten
            if merged.pgRestore.isEmpty { merged.pgRestore = next.pgRestore }
            merged.serialForOwners = serialForOwners || next.serialForOwners
            merged.pieces = pieces ?? next.pieces
            merged.unrevoked = Array((unrevoked + next.unrevoked).prefix(ChildStderr.maximumEntries))
            merged.unrevokedCount += next.unrevokedCount
            merged.unrevokedSeen.formUnion(next.unrevokedSeen)
            return merged
        }
    }

    /// `--verbose` makes pg_restore name the TOC entry each error belongs to.
    func arguments(_ ownership: OwnershipOptions, jobs: Int? = nil, file: String? = nil) -> [String] {
        let target = connection.map { "--dbname=\($0.childConnectionString)" } ?? "--file=/dev/null"
        return ownership.pgRestoreArguments + ["--no-password", "--verbose", target]
            + (jobs.map { ["--jobs=\($0)"] } ?? [])
            + (file.map { [$0] } ?? [])
    }

    /// Judges each pg_restore error as it comes: harmless, about owners and privileges, or an error.
    private var errorJudge: @Sendable (ChildStderr.Entry) async -> ChildStderr.Disposition {
        let privileges = privilegeRestore
        return { entry in await Self.judge(entry, privileges: privileges) }
    }

    /// What one pg_restore error amounts to: harmless (``KnownRestoreErrors``), dealt with by
    /// `privileges`, or an error.
    package static func judge(
        _ entry: ChildStderr.Entry,
        privileges: PrivilegeRestore?
    ) async -> ChildStderr.Disposition {
        if let reason = KnownRestoreErrors.harmless(entry) { return .harmless(reason: reason) }
        return await privileges?.judge(entry) ?? .error
    }

    /// Runs `body` (pg_restore), then closes the privilege replay's session whatever happened.
    func finishingPrivileges(_ body: () async throws -> Report) async throws -> Report {
        do {
            var report = try await body()
            report.privileges = await privilegeRestore?.finish()
            return report
        } catch var failure as RestoreFailure {
            failure.report.privileges = await privilegeRestore?.finish()
            throw failure
        } catch {
            _ = await privilegeRestore?.finish()
            throw error
        }
    }

    /// What a restore knows once its archive's first bytes have come.
    struct Start: Sendable {
        /// The pg_restore that reads the archive.
        var pgRestore: String
        /// What to restore of owners and privileges (``beforeStart``'s answer).
        var ownership: OwnershipOptions
    }

    /// Which pg_restore reads the archive that begins with `first` (its header), and
    /// ``beforeStart``'s answer, which it runs.
    /// - Throws: ``PGCloneError`` if no pg_restore here reads the archive's version; what
    ///   ``beforeStart`` throws.
    func start(first: ByteBuffer?) async throws -> Start {
        try await start(version: first.flatMap { ArchiveVersion(header: $0.readableBytesView) })
    }

    private func start(version: ArchiveVersion?) async throws -> Start {
        let pgRestore = try installations.forRestore(archive: version, serverMajor: serverMajor).pgRestore
        return Start(pgRestore: pgRestore, ownership: try await beforeStart?() ?? ownership)
    }

    /// Restores the archive in `input`. Throws `.restoreFailed` if pg_restore exits with a failure
    /// status — unless `ignoreErrors` is set and all it reported were errors on single statements
    /// ("errors ignored on restore"), in which case the report lists them. A failure of `input`
    /// (a corrupt dump, a storage error) is rethrown as is, and pg_restore is stopped.
    package func restore(from input: ByteStream, ignoreErrors: Bool) async throws -> Report {
        var iterator = input.makeAsyncIterator()
        let first = try await iterator.next()
        let started: Start
        do {
            started = try await start(first: first)
        } catch {
            input.cancel()
            throw error
        }
        let (pgRestore, arguments) = (started.pgRestore, arguments(started.ownership))
        return try await finishingPrivileges {
            try await runStreaming(
                pgRestore,
                arguments,
                input: input,
                first: first.map { [$0] } ?? [],
                rest: iterator,
                ignoreErrors: ignoreErrors
            )
        }
    }

    /// Runs pg_restore with `arguments`, writing `first` and what `rest` yields of `input` into
    /// its stdin; its errors judged as they come, its exit status at the end.
    func runStreaming(
        _ pgRestore: String,
        _ arguments: [String],
        input: ByteStream,
        first: some Sequence<ByteBuffer> & Sendable,
        rest: ByteStream.AsyncIterator,
        ignoreErrors: Bool
    ) async throws -> Report {
        let stdinWaiting = self.stdinWaiting
        let judge = errorJudge
        var iterator = rest
        if connection != nil {
            do {
                try await confirmTarget?()
            } catch {
                input.cancel()
                throw error
            }
        }
        let result = try await Subprocess.run(
            ChildProcess.executable(pgRestore),
            arguments: Arguments(arguments),
            environment: connection.map(ChildProcess.environment) ?? ChildProcess.inheritedInEnglish,
            platformOptions: try ChildProcess.platformOptions(),
            input: .inputWriter,
            output: .discarded,
            error: .sequence
        ) { execution in
            async let log = ChildProcess.collect(execution.standardError, program: "pg_restore", judge: judge)
            let writer = execution.standardInputWriter
            var written = 0
            var stoppedReading = false
            // `first`'s chunks, then `rest`'s.
            var firstChunks = first.makeIterator()
            var next = firstChunks.next()
            var readingFirst = next != nil
            if !readingFirst { next = try await iterator.next() }
            while let chunk = next {
                do {
                    stdinWaiting?(true)
                    defer { stdinWaiting?(false) }
                    _ = try await writer.write(chunk.readableBytesSpan)
                } catch {
                    // pg_restore exited (its exit status says why) or closed its stdin.
                    stoppedReading = true
                    input.cancel()
                    break
                }
                written += chunk.readableBytes
                if readingFirst, let more = firstChunks.next() {
                    next = more
                } else {
                    readingFirst = false
                    next = try await iterator.next()
                }
            }
            try? await writer.finish()
            return (written, stoppedReading, try await log)
        }
        // Stopped because pgclone was interrupted: that, not the child's status, is the news.
        try Task.checkCancellation()
        let (written, stoppedReading, collected) = result.closureResult
        var log = collected
        await retryDeferred(into: &log)
        return try Self.judgeExit(
            result.terminationStatus,
            log,
            bytesWritten: written,
            stoppedReading: stoppedReading,
            ignoreErrors: ignoreErrors,
            pgRestore: pgRestore
        )
    }

    /// Restores the archive file at `path` with `jobs` parallel jobs (`pg_restore -j`, which needs
    /// a file it can seek in). Errors are judged as for a streamed restore. The privileges and what
    /// pg_restore restores after them run in a second, serial pg_restore (``RestorePasses``).
    /// `started` is what ``start(first:)`` said of the archive's first bytes as they were written
    /// into the file; without it, the file's are read.
    func restore(file path: String, jobs: Int, ignoreErrors: Bool, started: Start? = nil) async throws -> Report {
        let (pgRestore, ownership): (String, OwnershipOptions)
        if let started {
            (pgRestore, ownership) = (started.pgRestore, started.ownership)
        } else {
            let read = try await start(version: Self.archiveVersion(ofFile: path))
            (pgRestore, ownership) = (read.pgRestore, read.ownership)
        }
        let listing = try await list(path, pgRestore: pgRestore)
        return try await finishingPrivileges {
            try await restoreListed(
                path,
                listing: listing,
                pgRestore: pgRestore,
                ownership: ownership,
                jobs: jobs,
                ignoreErrors: ignoreErrors
            )
        }
    }

    /// Restores the entries of `listing` (`pg_restore -l`'s lines) of the archive file at `path`
    /// with `pg_restore -j jobs`; the privileges and what pg_restore restores after them in a
    /// second, serial pg_restore (``RestorePasses``). The `-L` lists are files in memory.
    func restoreListed(
        _ path: String,
        listing: String,
        pgRestore: String,
        ownership: OwnershipOptions,
        jobs: Int,
        ignoreErrors: Bool
    ) async throws -> Report {
        // pg_restore's workers write their errors into each other: those of owners that cannot
        // be given could not be told apart from real ones. One session, then (the last pass's
        // entries run in one anyway).
        let passes = RestorePasses.split(listing: listing)
        if ownership.owners, let privilegeRestore,
            case let refused = try await privilegeRestore.unassignable(
                RestorePasses.owners(listing: passes?.parallel ?? listing)
            ),
            !refused.isEmpty
        {
            var report = try await runListed(pgRestore, path, list: listing, ownership, ignoreErrors: ignoreErrors)
            report.serialForOwners = true
            return report
        }
        guard let passes else {
            return try await runListed(
                pgRestore,
                path,
                list: listing,
                ownership,
                jobs: jobs,
                ignoreErrors: ignoreErrors
            )
        }
        let first = try await runListed(
            pgRestore,
            path,
            list: passes.parallel,
            ownership,
            jobs: jobs,
            ignoreErrors: ignoreErrors
        )
        do {
            let second = try await runListed(
                pgRestore,
                path,
                list: passes.serial,
                ownership,
                ignoreErrors: ignoreErrors
            )
            return first.merging(second)
        } catch var failure as RestoreFailure {
            failure.report = first.merging(failure.report)
            throw failure
        }
    }

    /// Runs pg_restore on the archive file at `path` for the entries of `list` (a `pg_restore -L`
    /// list, passed as a file in memory), with `jobs` if given; nothing if the list names none.
    func runListed(
        _ pgRestore: String,
        _ path: String,
        list: String,
        _ ownership: OwnershipOptions,
        jobs: Int? = nil,
        ignoreErrors: Bool
    ) async throws -> Report {
        guard list.split(separator: "\n").contains(where: { !$0.hasPrefix(";") }) else {
            return Report(errorCount: 0, errors: [], bytesWritten: 0)
        }
        let file = try MemoryFile(name: "pgclone-list", contents: list.utf8)
        defer { file.close() }
        return try await run(
            pgRestore,
            arguments(ownership, jobs: jobs, file: path) + ["--use-list=\(file.path)"],
            ignoreErrors: ignoreErrors
        )
    }

    /// `pg_restore --list` of the archive file at `path`: its table of contents.
    func list(_ path: String, pgRestore: String) async throws -> String {
        let result = try await Subprocess.run(
            ChildProcess.executable(pgRestore),
            arguments: ["--list", path],
            environment: ChildProcess.inheritedInEnglish,
            platformOptions: try ChildProcess.platformOptions(),
            input: .none,
            output: .string(limit: 256 << 20),
            error: .string(limit: 64 << 10)
        )
        let listing = result.standardOutput
        guard result.terminationStatus.isSuccess else {
            let message = result.standardError.singleLine
            throw RestoreFailure(
                message: """
                    pg_restore --list \(ChildProcess.describe(result.terminationStatus)): \
                    \(message.isEmpty ? "it printed no message" : message)
                    """,
                report: Report(errorCount: 0, errors: [], bytesWritten: 0),
                acceptable: false
            )
        }
        return listing
    }

    /// Runs pg_restore on a file with `arguments`; its errors judged as they come, its exit status
    /// judged at the end.
    func run(_ pgRestore: String, _ arguments: [String], ignoreErrors: Bool) async throws -> Report {
        let judge = errorJudge
        if connection != nil { try await confirmTarget?() }
        let result = try await Subprocess.run(
            ChildProcess.executable(pgRestore),
            arguments: Arguments(arguments),
            environment: connection.map(ChildProcess.environment) ?? ChildProcess.inheritedInEnglish,
            platformOptions: try ChildProcess.platformOptions(),
            input: .none,
            output: .discarded,
            error: .sequence
        ) { execution in
            try await ChildProcess.collect(execution.standardError, program: "pg_restore", judge: judge)
        }
        try Task.checkCancellation()
        var log = result.closureResult
        await retryDeferred(into: &log)
        return try Self.judgeExit(
            result.terminationStatus,
            log,
            bytesWritten: 0,
            stoppedReading: false,
            ignoreErrors: ignoreErrors,
            pgRestore: pgRestore
        )
    }

    /// Runs again what failed for privileges replayed meanwhile (materialized views' refreshes);
    /// what fails again is an error of `log`.
    private func retryDeferred(into log: inout ChildStderr) async {
        for failure in await privilegeRestore?.retryDeferred() ?? [] {
            log.record(failure, as: .error)
        }
    }

    /// The version in the header of the archive file at `path`.
    private static func archiveVersion(ofFile path: String) -> ArchiveVersion? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 16)).flatMap { ArchiveVersion(header: $0) }
    }

    /// The report of a pg_restore that ended with `status`, or the failure it amounts to.
    package static func judgeExit(
        _ status: TerminationStatus,
        _ log: ChildStderr,
        bytesWritten: Int,
        stoppedReading: Bool,
        ignoreErrors: Bool,
        pgRestore: String
    ) throws -> Report {
        // The error lines, counted as they come: pg_restore's own "errors ignored on restore: N"
        // counts each error twice with --jobs (the worker's and the leader's tally, PostgreSQL 15),
        // and counts those judged harmless or dealt with too.
        let count = log.reportedErrorCount > 0 ? log.errorCount : log.ignoredErrorCount ?? 0
        let errors = log.entries
        var report = Report(errorCount: count, errors: errors, harmless: log.harmless, bytesWritten: bytesWritten)
        report.pgRestore = pgRestore
        (report.unrevoked, report.unrevokedCount, report.unrevokedSeen) = (
            log.unrevoked, log.unrevokedCount, log.unrevokedSeen
        )
        // Errors all judged harmless or dealt with in interleaved output (pg_restore -j), but an
        // error marker on a line that was not read as an error: that one may not have been seen
        // for what it was, so it counts as a failure. (Progress lines run into each other are
        // harmless.)
        if log.interleaved && log.unreadErrorMarkers > 0 && count == 0 && status == .exited(1) {
            report.errorCount = 1
        }
        // A session the server ended left its work undone: never an error on one statement.
        if let lost = log.sessionLost {
            // libpq's words for a connection it could not make (a worker's, with -j).
            let connecting = lost.hasPrefix("connection to server ") && lost.contains(" failed: ")
            let full = ["too many clients", "too many connections", "connection slots are reserved"]
                .contains(where: lost.contains)
            let advice = full ? "; lower --jobs or raise max_connections" : ""
            var failure = RestoreFailure(
                message: connecting
                    ? "pg_restore could not connect to PostgreSQL (\(lost))\(advice)"
                    : "pg_restore's connection to PostgreSQL was lost (\(lost))",
                report: report,
                acceptable: false
            )
            failure.sessionLost = true
            throw failure
        }
        // The privileges of an entry pgclone could not run again: its REVOKEs undone with the
        // rest, the object as open as a new one, which no flag may accept.
        if let lost = log.replayLost {
            throw RestoreFailure(message: lost, report: report, acceptable: false)
        }
        let statementErrorsOnly = log.ignoredErrorCount != nil && !stoppedReading
        if status.isSuccess && !stoppedReading {
            return report
        }
        if status == .exited(1) && statementErrorsOnly && (ignoreErrors || report.errorCount == 0) {
            return report
        }
        let what: String
        if statementErrorsOnly, let entry = errors.first, let name = KnownRestoreErrors.extensionNeedingSuperuser(entry)
        {
            what = """
                only a superuser may create extension \"\(name)\", which the dump holds; restore as a role that may \
                (a superuser, or on a managed server its administrator role), or dump without it (pg_dump 17 and \
                newer: pgclone dump --exclude-extension \(name))
                """
        } else if statementErrorsOnly && errors.isEmpty && log.interleaved {
            what = """
                pg_restore's parallel workers wrote their messages into each other, and pgclone could not tell every \
                error apart; restore without --jobs to see them
                """
        } else if statementErrorsOnly {
            let count = report.errorCount
            what = """
                pg_restore reported \(counted(count, "error")) (first: \
                \(errors.first?.message ?? log.summary ?? "?"))
                """
        } else if status.isSuccess {
            what = "pg_restore stopped reading the archive before its end"
        } else {
            what = "pg_restore \(ChildProcess.describe(status)): \(log.summary ?? "it printed no message")"
        }
        throw RestoreFailure(message: what, report: report, acceptable: statementErrorsOnly)
    }
}

/// pg_restore failed; `report` has its errors.
package struct RestoreFailure: Error, Sendable, CustomStringConvertible {
    package var message: String
    package var report: RestoreRunner.Report
    /// Only statement errors, which `--ignore-restore-errors` would accept.
    package var acceptable: Bool
    /// A session of pg_restore's ended (or could not be made): the errors that followed, each
    /// statement on a dead connection, say nothing more.
    package var sessionLost = false
    package var description: String { message }
    /// The first error's TOC entry, DETAIL, HINT, CONTEXT and statement.
    package var details: [PGCloneError.Detail] { report.errors.first?.details ?? [] }
}
