package import Logging
package import PGCloneMetrics
package import PGCloneStreams

/// What `verify` found in a sound dump.
package struct VerifiedDump: Sendable {
    package var dump: StoredDump
    package var format: DumpFormat
    package var metadata: DumpMetadata?
    package var archiveBytes: Int
}

/// `pgclone verify`: streams a dump as a restore would — every zstd frame decoded and its checksum
/// checked — into pg_restore writing to /dev/null, which must read the archive to its end. Nothing
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
            let (_, decoded, _) = try await runStages(
                source: { try await storage.read(dump.key, into: storedSource) },
                transform: { try await decoder.decode(stored, into: archiveSource) },
                sink: { try await runner.restore(from: archive, ignoreErrors: false) }
            )
            return VerifiedDump(
                dump: dump,
                format: decoded.format,
                metadata: decoded.metadata,
                archiveBytes: decoded.archiveBytes
            )
        } catch {
            throw PGCloneError.from(error, dump: dump.key)
        }
    }
}
