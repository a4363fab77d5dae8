import NIOCore

/// The compressing stage of a dump: pg_dump's archive in, pgclone's stored format out — the metadata
/// skippable frame, then one checksummed zstd frame.
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

    /// Compresses `input` into `output`, which it finishes (with the error, if it fails).
    /// - Returns: the number of bytes written to `output`.
    @discardableResult
    package func encode(
        _ input: ByteStream,
        into output: ByteStream.Source,
        metadata: DumpMetadata?
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
            for try await var chunk in input {
                while chunk.readableBytes > 0 {
                    _ = try context.step(input: &chunk, output: &out, end: false)
                    try await emitIfFull()
                }
                peakContextMemory = max(peakContextMemory, context.memoryInUse)
            }
            var empty = ByteBuffer()
            while try context.step(input: &empty, output: &out, end: true) != 0 {
                try await emitIfFull()
            }
            if out.readableBytes > 0 {
                written += out.readableBytes
                try await output.write(out)
            }
            return written
        }
    }
}
