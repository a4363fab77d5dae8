package import Logging
package import PGCloneMetrics
package import PGCloneStreams

/// What `verify` found in a sound dump.
package struct VerifiedDump: Sendable {
    package var dump: StoredDump
    package var format: DumpFormat
    package var metadata: DumpMetadata?
    package var archiveBytes: Int
    /// The frames its ``ArchiveIndex`` lists, all checked; `nil` for a dump without an index.
    package var indexedFrames: Int?
}

/// `pgclone verify`: streams a dump as a restore would — every zstd frame decoded and its checksum
/// checked — into pg_restore writing to /dev/null, which must read the archive to its end. A dump
/// with an ``ArchiveIndex`` has it checked against the frames decoded and the archive read. Nothing
/// touches a database.
package struct VerifyPipeline: Sendable {
    package var storage: any StorageBackend
    package var budget: MemoryBudget
    package var environment: [String: String] = [:]
    package var metrics: PGCloneMetrics
    package var logger: Logger

    package init(storage: any StorageBackend, budget: MemoryBudget, metrics: PGCloneMetrics, logger: Logger) {
        self.storage = storage
        self.budget = budget
        self.metrics = metrics
        self.logger = logger
    }

    package func run(_ dump: StoredDump) async throws -> VerifiedDump {
        let ((stored, storedSource), (archive, archiveSource)) = metrics.restoreStreams(capacity: budget.streamCapacity)
        let decoder = DumpDecoder(settings: budget.decompression)
        let runner = RestoreRunner(
            installations: try await PostgresInstallations.discover(environment: environment),
            serverMajor: nil,
            connection: nil
        )
        let storage = self.storage
        logger.info("verifying \(dump.key) (\(ByteCount(bytes: dump.size))) in \(storage.location)")
        do {
            let index: ArchiveIndex?
            switch try await storage.archiveIndex(of: dump.key) {
            case .index(let found): index = found
            case .none, .needsBytes: index = nil
            case .damaged(let reason):
                throw PGCloneError(.corruptDump, "the dump \(dump.key) has a damaged index: \(reason)")
            }
            let (_, decoded, _) = try await runStages(
                source: { try await storage.read(dump.key, into: storedSource) },
                transform: {
                    try await decoder.decode(stored, into: archiveSource, recordingFrames: index?.pieceSize)
                },
                sink: { try await runner.restore(from: archive, ignoreErrors: false) }
            )
            if let index, let mismatch = index.mismatch(with: decoded) {
                throw PGCloneError(
                    .corruptDump,
                    "the dump \(dump.key) has an index that does not match its archive: \(mismatch)"
                )
            }
            var verified = VerifiedDump(
                dump: dump,
                format: decoded.format,
                metadata: decoded.metadata,
                archiveBytes: decoded.archiveBytes
            )
            verified.indexedFrames = index?.frames.count
            return verified
        } catch {
            throw PGCloneError.from(error, dump: dump.key)
        }
    }
}
