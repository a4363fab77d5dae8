internal import CPGCloneZstd
package import NIOCore

extension ZstdFrame {
    /// Decompresses `input`, one or more whole zstd frames (a piece of an indexed dump,
    /// ``ArchiveIndex``), with the window capped as `settings` say; `expectedSize`, if known (the
    /// index says), sizes the output so that it is allocated once, or not at all when `reusing`
    /// (a buffer no longer needed, uniquely referenced) is as large: a fresh buffer of megabytes
    /// is a fresh mapping, faulted in and zeroed page by page.
    /// - Throws: ``DumpFormatError`` if the frames are corrupt, cut off or need a larger window.
    package static func decompress(
        _ input: ByteBuffer,
        settings: ZstdDecompressionSettings,
        expectedSize: Int? = nil,
        reusing spare: consuming ByteBuffer? = nil
    ) throws -> ByteBuffer {
        if let expectedSize { return try decompress(input, into: expectedSize, reusing: spare) }
        let context = try ZstdDecompressionContext(settings: settings)
        var input = input
        var output = ByteBufferAllocator().buffer(capacity: max(input.readableBytes * 4, 1 << 16))
        var hint = 1
        while true {
            if output.writableBytes == 0 { output.reserveCapacity(minimumWritableBytes: output.capacity) }
            let before = (input.readableBytes, output.readableBytes)
            hint = try step(context, input: &input, output: &output, settings: settings)
            // Done when the last frame is; stuck (a cut-off frame) when a call makes no progress.
            if hint == 0 && input.readableBytes == 0 { break }
            if before == (input.readableBytes, output.readableBytes) { break }
        }
        guard hint == 0 else { throw DumpFormatError.truncated }
        return output
    }

    /// Decompresses `input`, one or more whole zstd frames, `chunkSize` bytes of output at a time,
    /// giving each chunk to `body` (which may keep it): for a frame whose whole output need not
    /// be held at once (an indexed dump's table of contents, tens of MB for a large schema).
    /// - Throws: ``DumpFormatError`` if the frames are corrupt, cut off or need a larger window;
    ///   what `body` throws.
    package static func decompress(
        _ input: ByteBuffer,
        settings: ZstdDecompressionSettings,
        chunkSize: Int,
        _ body: (ByteBuffer) throws -> Void
    ) throws {
        let context = try ZstdDecompressionContext(settings: settings)
        var input = input
        var output = ByteBufferAllocator().buffer(capacity: max(chunkSize, 1))
        var hint = 1
        while true {
            let before = (input.readableBytes, output.readableBytes)
            hint = try step(context, input: &input, output: &output, settings: settings)
            let done = hint == 0 && input.readableBytes == 0
            // Stuck (a cut-off frame) when a call makes no progress with room to write.
            let stuck = before == (input.readableBytes, output.readableBytes)
            if output.readableBytes > 0, output.writableBytes == 0 || done || stuck {
                try body(output)
                output = ByteBufferAllocator().buffer(capacity: max(chunkSize, 1))
            }
            if done || stuck { break }
        }
        guard hint == 0 else { throw DumpFormatError.truncated }
    }

    /// One streaming step, its errors as a dump's.
    private static func step(
        _ context: ZstdDecompressionContext,
        input: inout ByteBuffer,
        output: inout ByteBuffer,
        settings: ZstdDecompressionSettings
    ) throws(DumpFormatError) -> Int {
        do {
            return try context.step(input: &input, output: &output)
        } catch {
            throw error.isWindowTooLarge
                ? DumpFormatError.windowTooLarge(windowLogMax: settings.windowLogMax) : DumpFormatError.corrupt(error)
        }
    }

    /// Decompresses `input` in one call straight into a buffer of `size` bytes (`ZSTD_decompress`):
    /// no window buffer of its own, which streaming needs, and no more than `size` bytes whatever
    /// the frames say. Checksums are verified as in streaming.
    /// - Throws: ``DumpFormatError`` if the frames are corrupt or cut off, or hold more than `size`.
    private static func decompress(
        _ input: ByteBuffer,
        into size: Int,
        reusing spare: consuming ByteBuffer?
    ) throws -> ByteBuffer {
        var output: ByteBuffer
        if var spare = spare.take(), spare.capacity >= size {
            spare.clear()
            output = spare
        } else {
            output = ByteBufferAllocator().buffer(capacity: max(size, 1))
        }
        var result = 0
        output.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { destination in
            result = input.withUnsafeReadableBytes { source in
                ZSTD_decompress(destination.baseAddress, min(size, destination.count), source.baseAddress, source.count)
            }
            return ZSTD_isError(result) != 0 ? 0 : result
        }
        guard ZSTD_isError(result) == 0 else {
            if ZSTD_getErrorCode(result) == ZSTD_error_srcSize_wrong { throw DumpFormatError.truncated }
            throw DumpFormatError.corrupt(ZstdError(code: result))
        }
        return output
    }
}
