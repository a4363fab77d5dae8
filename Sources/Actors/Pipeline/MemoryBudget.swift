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

    package init(limit: ByteCount = defaultLimit) throws(PGCloneError) {
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
        // An eighth of the limit for S3 parts: 4 × 2 MiB at 64 MiB, 2 × 2 MiB at 32 MiB. (The
        // process's own libraries take about half of the default limit.)
        s3PartSize = 2 * mebibyte
        s3PartsInFlight = max(1, min(16, limit.bytes / 8 / s3PartSize))
    }

    /// What the process itself takes besides its buffers: the Swift runtime, Foundation, libpq,
    /// libcurl (measured 28–37 MiB resident, mostly shared-library pages).
    package static let processConstant = 32 << 20

    /// The planned terms of a dump, by component, for metrics (S3 parts are added by S3 storage).
    package var dumpTerms: [(component: String, bytes: Int)] {
        [
            ("buffers", 2 * (streamCapacity.bytes + readChunkSize)),
            ("zstd_window", compression.workers * 2 * compression.jobSize + (1 << compression.windowLog)),
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
