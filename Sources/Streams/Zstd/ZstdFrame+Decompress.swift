package import NIOCore

extension ZstdFrame {
    /// Decompresses `input`, one or more whole zstd frames (a piece of an indexed dump,
    /// ``ArchiveIndex``), with the window capped as `settings` say.
    /// - Throws: ``DumpFormatError`` if the frames are corrupt, cut off or need a larger window.
    package static func decompress(_ input: ByteBuffer, settings: ZstdDecompressionSettings) throws -> ByteBuffer {
        let context = try ZstdDecompressionContext(settings: settings)
        var input = input
        var output = ByteBufferAllocator().buffer(capacity: max(input.readableBytes * 4, 1 << 16))
        var hint = 1
        while true {
            if output.writableBytes == 0 { output.reserveCapacity(minimumWritableBytes: output.capacity) }
            let before = (input.readableBytes, output.readableBytes)
            do {
                hint = try context.step(input: &input, output: &output)
            } catch {
                throw error.isWindowTooLarge
                    ? DumpFormatError.windowTooLarge(windowLogMax: settings.windowLogMax)
                    : DumpFormatError.corrupt(error)
            }
            // Done when the last frame is; stuck (a cut-off frame) when a call makes no progress.
            if hint == 0 && input.readableBytes == 0 { break }
            if before == (input.readableBytes, output.readableBytes) { break }
        }
        guard hint == 0 else { throw DumpFormatError.truncated }
        return output
    }
}
