import NIOCore
package import PGCloneMetrics
import PGCloneStreams

extension RestoreRunner {
    /// Restores an indexed dump in pieces (``PieceRestorePlan``), nothing on disk: pg_restore
    /// reads the table of contents from a file in memory for the schema (one session, so errors
    /// about owners are read as in a streamed restore), `loader` loads the tables' data with
    /// `jobs` COPY sessions while one more pg_restore restores sequence values and large objects
    /// from its stdin, then `pg_restore -j jobs` builds indexes and, after them, foreign keys;
    /// privileges and what follows them last, in one session.
    ///
    /// Each part is a phase of the run (`restore_schema`, `restore_data`, `restore_indexes`,
    /// `restore_constraints`). Errors are judged as in a streamed restore: with `ignoreErrors`, the
    /// statement errors of every part are reported together, else the first part with any fails.
    package func restore(
        pieces dump: IndexedDump,
        loader: PieceLoader,
        jobs: Int,
        ignoreErrors: Bool,
        metrics: PGCloneMetrics
    ) async throws -> Report {
        let pgRestore = try installations.forRestore(
            archive: dump.archiveVersion,
            serverMajor: serverMajor
        ).pgRestore
        let ownership = try await beforeStart?() ?? self.ownership
        let tableOfContents = dump.head
        defer { tableOfContents.close() }
        let path = tableOfContents.path
        let lists = dump.plan.lists(listing: try await list(path, pgRestore: pgRestore))
        return try await finishingPrivileges {
            var report = try await metrics.phase(.restoreSchema) {
                try await runListed(pgRestore, path, list: lists.schema, ownership, ignoreErrors: ignoreErrors)
            }
            report = try await continuing(report) {
                try await metrics.phase(.restoreData) {
                    try await restoreData(
                        dump,
                        loader: loader,
                        otherList: lists.otherData,
                        pgRestore: pgRestore,
                        ownership: ownership,
                        jobs: jobs,
                        ignoreErrors: ignoreErrors,
                        metrics: metrics
                    )
                }
            }
            // Indexes before foreign keys, which need them.
            for (phase, listing) in [(Phase.restoreIndexes, lists.indexes), (.restoreConstraints, lists.constraints)] {
                report = try await continuing(report) {
                    try await metrics.phase(phase) {
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
            }
            report.pgRestore = pgRestore
            return report
        }
    }

    /// `earlier` merged with what `part` reports, also when it fails.
    private func continuing(_ earlier: Report, _ part: () async throws -> Report) async throws -> Report {
        do {
            return earlier.merging(try await part())
        } catch var failure as RestoreFailure {
            failure.report = earlier.merging(failure.report)
            throw failure
        }
    }

    /// The data section: the tables' pieces by `loader`, and the rest (`otherList`: sequence
    /// values, large objects) by one pg_restore reading the table of contents and the large
    /// objects' blocks from its stdin, at the same time.
    private func restoreData(
        _ dump: IndexedDump,
        loader: PieceLoader,
        otherList: String,
        pgRestore: String,
        ownership: OwnershipOptions,
        jobs: Int,
        ignoreErrors: Bool,
        metrics: PGCloneMetrics
    ) async throws -> Report {
        // The download runs on its own clock while the object is read; the sessions, several at
        // once, count their own time into the steps after it (PieceLoader).
        let sessionSteps = [Step.decompress, .restoreStdin].map(metrics.step)
        for step in sessionSteps { step.setActive(true) }
        defer { for step in sessionSteps { step.setActive(false) } }
        // The reader, the sessions and pg_restore: whichever fails first stops the others.
        let feed = PieceFeed(capacity: jobs)
        let other = otherList.isEmpty ? nil : ByteStream.makeStream(backpressureStrategy: .capacity(.bytes(1 << 20)))
        return try await withThrowingTaskGroup(of: Report?.self) { group in
            group.addTask {
                try await loader.read(into: feed, other: other?.source)
                return nil
            }
            group.addTask {
                let loaded = try await loader.load(sessions: jobs, from: feed)
                var report = Report(
                    errorCount: loaded.errorCount,
                    errors: loaded.errors,
                    bytesWritten: loaded.archiveBytes
                )
                report.pieces = loaded
                return report
            }
            if let other {
                group.addTask {
                    try await self.restoreOtherData(
                        dump,
                        list: otherList,
                        input: other.stream,
                        pgRestore: pgRestore,
                        ownership: ownership,
                        ignoreErrors: ignoreErrors
                    )
                }
            }
            var report = Report(errorCount: 0, errors: [], bytesWritten: 0)
            for try await part in group {
                if let part { report = report.merging(part) }
            }
            return report
        }
    }

    /// pg_restore for the data section's entries in `list` (not the tables'), its stdin the
    /// table of contents, then the large objects' blocks from `input` (``PieceLoader/read(into:other:)``).
    private func restoreOtherData(
        _ dump: IndexedDump,
        list: String,
        input: ByteStream,
        pgRestore: String,
        ownership: OwnershipOptions,
        ignoreErrors: Bool
    ) async throws -> Report {
        let listFile = try MemoryFile(name: "pgclone-list", contents: list.utf8)
        defer { listFile.close() }
        return try await runStreaming(
            pgRestore,
            arguments(ownership) + ["--use-list=\(listFile.path)"],
            input: input,
            first: dump.head.chunks(of: 1 << 20),
            rest: input.makeAsyncIterator(),
            ignoreErrors: ignoreErrors
        )
    }
}
