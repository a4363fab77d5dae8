internal import CPGCloneZstd
import NIOCore

/// Settings of the compressing stage; ``ZstdCompressionSettings/forBudget(_:)`` derives them from the
/// memory budget.
package struct ZstdCompressionSettings: Sendable, Hashable {
    /// zstd level, one of ``levels``. 1, the default, compresses pg_dump's output smaller than 3 with a
    /// 1 MiB window, at twice the speed and a fraction of the memory (BENCHMARKS.md).
    package var level: Int = 1
    /// The levels pgclone accepts: zstd's regular ones, without the "ultra" levels whose windows the
    /// fixed ``windowLog`` would defeat anyway.
    package static let levels = 1...19
    /// Worker threads; 0 compresses on the calling thread.
    package var workers: Int = 2
    /// log2 of the window; every reader's decoder accepts up to ``ZstdDecompressionSettings/windowLogMax``.
    package var windowLog: Int = 20
    /// Bytes per compression job when `workers > 0`; each worker holds about one job of input and output.
    package var jobSize: Int = 2 << 20

    package init() {}

    /// Bytes the compressor is planned to hold: one match-finder context per worker (or one on the
    /// calling thread), whose tables grow with the level, plus a job's input and output per worker and
    /// the window. zstd's own estimate for the level's parameters with this window.
    package var plannedMemory: Int {
        var parameters = ZSTD_getCParams(Int32(level), 0, 0)
        parameters.windowLog = UInt32(windowLog)
        let context = ZSTD_estimateCCtxSize_usingCParams(parameters)
        return max(1, workers) * context + workers * 2 * jobSize + (1 << windowLog)
    }
}

/// Settings of the decompressing stage.
package struct ZstdDecompressionSettings: Sendable, Hashable {
    /// log2 of the largest window a frame may ask for. A frame asking for more is refused before any
    /// memory is allocated for it, so a hostile frame cannot make memory grow.
    package var windowLogMax: Int = 23

    package init() {}
}

/// A libzstd compression context (`ZSTD_CCtx`), owned by one stage. Not thread-safe: used from one
/// actor only.
final class ZstdCompressionContext {
    private let context: OpaquePointer
    static let outputChunkSize = ZSTD_CStreamOutSize()

    init(settings: ZstdCompressionSettings) throws(ZstdError) {
        guard let context = ZSTD_createCCtx() else {
            throw ZstdError(code: 0, name: "could not allocate a compression context")
        }
        self.context = context
        try set(ZSTD_c_compressionLevel, settings.level)
        try set(ZSTD_c_checksumFlag, 1)
        try set(ZSTD_c_windowLog, settings.windowLog)
        if settings.workers > 0 {
            try set(ZSTD_c_nbWorkers, settings.workers)
            try set(ZSTD_c_jobSize, settings.jobSize)
        }
    }

    deinit {
        ZSTD_freeCCtx(context)
    }

    private func set(_ parameter: ZSTD_cParameter, _ value: Int) throws(ZstdError) {
        try zstdCheck(ZSTD_CCtx_setParameter(context, parameter, Int32(value)))
    }

    /// Memory the context holds right now, workers' buffers included.
    var memoryInUse: Int { ZSTD_sizeof_CCtx(context) }

    /// Feeds part of `input` to the compressor and writes what it produces into `output`'s free
    /// space. Returns zstd's hint: with `end`, 0 once the frame is completely written out.
    func step(input: inout ByteBuffer, output: inout ByteBuffer, end: Bool) throws(ZstdError) -> Int {
        var consumed = 0
        var result = 0
        _ = input.withUnsafeReadableBytes { source in
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { destination in
                var inBuffer = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
                var outBuffer = ZSTD_outBuffer(dst: destination.baseAddress, size: destination.count, pos: 0)
                result = ZSTD_compressStream2(context, &outBuffer, &inBuffer, end ? ZSTD_e_end : ZSTD_e_continue)
                consumed = inBuffer.pos
                return outBuffer.pos
            }
        }
        input.moveReaderIndex(forwardBy: consumed)
        return try zstdCheck(result)
    }
}

/// A libzstd decompression context (`ZSTD_DCtx`), owned by one stage.
final class ZstdDecompressionContext {
    private let context: OpaquePointer
    static let outputChunkSize = ZSTD_DStreamOutSize()

    init(settings: ZstdDecompressionSettings) throws(ZstdError) {
        guard let context = ZSTD_createDCtx() else {
            throw ZstdError(code: 0, name: "could not allocate a decompression context")
        }
        self.context = context
        try zstdCheck(ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, Int32(settings.windowLogMax)))
    }

    deinit {
        ZSTD_freeDCtx(context)
    }

    /// Decodes part of `input` into `output`'s free space. Returns zstd's hint: 0 when a frame has
    /// just been completely decoded and flushed, otherwise more input (or another call, if `output`
    /// is full) is needed.
    func step(input: inout ByteBuffer, output: inout ByteBuffer) throws(ZstdError) -> Int {
        var consumed = 0
        var result = 0
        _ = input.withUnsafeReadableBytes { source in
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { destination in
                var inBuffer = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
                var outBuffer = ZSTD_outBuffer(dst: destination.baseAddress, size: destination.count, pos: 0)
                result = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
                consumed = inBuffer.pos
                return outBuffer.pos
            }
        }
        input.moveReaderIndex(forwardBy: consumed)
        return try zstdCheck(result)
    }
}

/// The version of the linked libzstd, e.g. `1.5.4`.
package var zstdVersion: String { String(cString: ZSTD_versionString()) }
