import NIOCore

/// The compressing stage of a dump: pg_dump's archive in, pgclone's stored format out — the metadata
/// skippable frame, checksummed zstd frames (one per piece of the archive, see ``ArchiveIndex``),
/// then the index's skippable frame.
///
/// Compression is CPU work that, with workers, also waits on libzstd's threads; it runs on the
/// stage's own serial queue, never on Swift's cooperative pool.
package actor DumpEncoder {
    private let executor = DispatchQueueExecutor(label: "pgclone.compress")
    package nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    package let settings: ZstdCompressionSettings
    /// Largest memory libzstd held during the last `encode` (`ZSTD_sizeof_CCtx`).
    package private(set) var peakContextMemory = 0

    package init(settings: ZstdCompressionSettings) {
        self.settings = settings
    }

    /// Compresses `input` into `output`, which it finishes (with the error, if it fails). A new
    /// frame starts wherever ``ArchiveScanner`` may cut the archive (`pieceSize` bytes of table
    /// data at most per piece); if it read the whole archive, the object ends with its
    /// ``ArchiveIndex``.
    /// - Returns: the number of bytes written to `output`.
    @discardableResult
    package func encode(
        _ input: ByteStream,
        into output: ByteStream.Source,
        metadata: DumpMetadata?,
        pieceSize: Int = 4 << 20
    ) async throws -> Int {
        try await output.finishing {
            let context = try ZstdCompressionContext(settings: settings)
            let allocator = ByteBufferAllocator()
            var written = 0
            if let metadata {
                let frame = ByteBuffer(bytes: try metadata.skippableFrame())
                written += frame.readableBytes
                try await output.write(frame)
            }
            var out = allocator.buffer(capacity: ZstdCompressionContext.outputChunkSize)
            func emitIfFull() async throws {
                guard out.writableBytes == 0 else { return }
                written += out.readableBytes
                try await output.write(out)
                out = allocator.buffer(capacity: ZstdCompressionContext.outputChunkSize)
            }
            func compress(_ chunk: inout ByteBuffer) async throws {
                while chunk.readableBytes > 0 {
                    _ = try context.step(input: &chunk, output: &out, end: false)
                    try await emitIfFull()
                }
            }
            func endFrame() async throws {
                var empty = ByteBuffer()
                while try context.step(input: &empty, output: &out, end: true) != 0 {
                    try await emitIfFull()
                }
            }
            var scanner = ArchiveScanner(pieceSize: pieceSize)
            // Where each frame starts in the stored object; the first is the table of contents'.
            var frameStarts = [written]
            var archiveBytes = 0
            for try await var chunk in input {
                let cuts = chunk.withUnsafeReadableBytes { scanner.scan($0) }
                for cut in cuts {
                    var before = chunk.readSlice(length: cut - archiveBytes)!
                    archiveBytes = cut
                    try await compress(&before)
                    try await endFrame()
                    frameStarts.append(written + out.readableBytes)
                }
                archiveBytes += chunk.readableBytes
                try await compress(&chunk)
                peakContextMemory = max(peakContextMemory, context.memoryInUse)
            }
            try await endFrame()
            if out.readableBytes > 0 {
                written += out.readableBytes
                try await output.write(out)
            }
            scanner.finish()
            guard scanner.isComplete, scanner.cuts.count + 1 == frameStarts.count else {
                return written
            }
            let frames =
                [ArchiveIndex.Frame(stored: frameStarts[0], archive: 0, dumpID: nil, startsBlock: true)]
                + zip(scanner.cuts, frameStarts.dropFirst()).map { cut, stored in
                    ArchiveIndex.Frame(
                        stored: stored,
                        archive: cut.offset,
                        dumpID: cut.dumpID,
                        startsBlock: cut.startsBlock
                    )
                }
            let index = ArchiveIndex(
                pieceSize: pieceSize,
                archiveBytes: archiveBytes,
                storedBytes: written,
                frames: frames
            )
            let frame = ByteBuffer(bytes: try index.skippableFrame())
            written += frame.readableBytes
            try await output.write(frame)
            return written
        }
    }
}
