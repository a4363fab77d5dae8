package import PGCloneS3
package import PGCloneStreams

/// pgclone's memory as a sum of fixed budgets derived from one limit (`--memory-limit`, default
/// 64 MiB): each stream's capacity, the zstd window and workers, and a constant for the process
/// itself. The dump's size appears nowhere in it.
package struct MemoryBudget: Sendable, Hashable {
    package static let defaultLimit = ByteCount.mebibytes(64)
    /// Below this the process's own footprint leaves nothing for buffers.
    package static let minimumLimit = ByteCount.mebibytes(16)

    package var limit: ByteCount
    /// High watermark of each stream between stages.
    package var streamCapacity: ByteCount
    /// Bytes per read from storage (and so per chunk).
    package var readChunkSize: Int
    package var compression: ZstdCompressionSettings
    package var decompression: ZstdDecompressionSettings
    /// S3 parts held in memory at once (ranged GETs in flight, or upload parts), and their size.
    package var s3PartsInFlight: Int
    package var s3PartSize: Int

    package init(limit: ByteCount = defaultLimit, compressionLevel: Int = 1) throws(PGCloneError) {
        guard limit >= Self.minimumLimit else {
            throw PGCloneError(
                .invalidConfiguration,
                "the memory limit \(limit) is too small; pgclone needs at least \(Self.minimumLimit)"
            )
        }
        self.limit = limit
        let mebibyte = 1 << 20
        streamCapacity = .bytes(min(max(limit.bytes / 64, 256 << 10), 8 * mebibyte))
        readChunkSize = 128 << 10
        decompression = ZstdDecompressionSettings()
        // The largest window whose buffer fits in an eighth of the limit: 8 MiB at 64 MiB.
        let window = limit.bytes / 8
        decompression.windowLogMax = min(27, max(20, Int.bitWidth - 1 - window.leadingZeroBitCount))
        compression = ZstdCompressionSettings()
        compression.workers = limit.bytes >= 48 * mebibyte ? 2 : (limit.bytes >= 32 * mebibyte ? 1 : 0)
        compression.jobSize = max(512 << 10, limit.bytes / 128)
        compression.level = compressionLevel
        // Higher levels need larger match-finder tables in every worker: fewer workers, then a refusal.
        while compression.plannedMemory > limit.bytes / 4 && compression.workers > 0 {
            compression.workers -= 1
        }
        // An eighth of the limit for S3 parts: 4 × 2 MiB at 64 MiB, 2 × 2 MiB at 32 MiB. (The
        // process's own libraries take about half of the default limit.)
        s3PartSize = 2 * mebibyte
        s3PartsInFlight = max(1, min(16, limit.bytes / 8 / s3PartSize))
    }

    /// The compressor's share of the limit (16 MiB at 64 MiB): its workers' tables, jobs and window.
    package var compressorShare: Int { limit.bytes / 4 }

    /// Refuses a compression level whose tables do not fit the compressor's share even on one thread,
    /// naming the largest level that fits and the limit the asked one needs. `origin` names the setting.
    package func checkCompressionFits(origin: String) throws(PGCloneError) {
        guard compression.plannedMemory > compressorShare else { return }
        let level = compression.level
        let fitting =
            ZstdCompressionSettings.levels.last { candidate in
                (try? MemoryBudget(limit: limit, compressionLevel: candidate))?.compression.plannedMemory ?? .max
                    <= compressorShare
            } ?? 1
        let needed = (6...12).lazy.map { ByteCount.mebibytes(1 << $0) }.first { candidate in
            guard let budget = try? MemoryBudget(limit: candidate, compressionLevel: level) else { return false }
            return budget.compression.plannedMemory <= budget.compressorShare
        }
        throw PGCloneError(
            .invalidConfiguration,
            "\(origin) \(level) needs \(ByteCount.bytes(compression.plannedMemory)) for zstd's tables, more than the "
                + """
                \(ByteCount.bytes(compressorShare)) a memory limit of \(limit) allows; choose a level of at most \
                \(fitting)
                """
                + (needed.map { " or a memory limit of \($0.bytes >> 20)MiB" } ?? "")
        )
    }

    /// What the process itself takes besides its buffers: the Swift runtime, Foundation, libpq,
    /// libcurl (measured 28–37 MiB resident, mostly shared-library pages).
    package static let processConstant = 32 << 20

    /// The planned terms of a dump, by component, for metrics (S3 parts are added by S3 storage).
    package var dumpTerms: [(component: String, bytes: Int)] {
        [
            ("buffers", 2 * (streamCapacity.bytes + readChunkSize)),
            ("zstd_window", compression.plannedMemory),
            ("other", Self.processConstant),
        ]
    }

    /// The planned terms of a restore, by component, for logs and metrics.
    package var restoreTerms: [(component: String, bytes: Int)] {
        [
            ("buffers", 2 * (streamCapacity.bytes + readChunkSize)),
            ("zstd_window", 1 << decompression.windowLogMax),
            ("other", Self.processConstant),
        ]
    }

}

extension S3Configuration {
    /// The S3 settings of `location` with the parts in flight and their size from `budget`.
    package init(
        location: String,
        environment: [String: String],
        profileRegion: String?,
        profileEndpoint: String? = nil,
        budget: MemoryBudget
    ) throws(PGCloneError) {
        do {
            try self.init(
                location: location,
                environment: environment,
                profileRegion: profileRegion,
                profileEndpoint: profileEndpoint,
                partsInFlight: budget.s3PartsInFlight,
                partSize: budget.s3PartSize
            )
        } catch {
            throw PGCloneError.from(error)
        }
    }
}
