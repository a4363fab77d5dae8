import NIOCore

/// Why a stored object could not be decoded. The descriptions complete "the dump …".
package enum DumpFormatError: Error, Sendable, CustomStringConvertible {
    /// Neither zstd nor a custom-format archive; says what it looks like.
    case unrecognized(String)
    /// The zstd stream ends inside a frame.
    case truncated
    /// A frame failed to decode or did not match its checksum.
    case corrupt(ZstdError)
    /// A frame asks for a larger window than the decoder allows.
    case windowTooLarge(windowLogMax: Int)
    /// A frame of pgclone's own (an indexed dump's) asks for a larger window than pgclone writes.
    case corruptFrameHeader

    package var description: String {
        switch self {
        case .unrecognized(let what):
            "is not a pgclone dump or a pg_dump custom-format archive: \(what)"
        case .truncated:
            "is truncated: its zstd stream ends in the middle of a frame"
        case .corrupt(let error):
            "is corrupt (\(error.name.lowercased()))"
        case .windowTooLarge(let windowLogMax):
            """
            needs a zstd window larger than the \(ByteCount(bytes: 1 << windowLogMax)) the memory limit allows; \
            raise --memory-limit
            """
        case .corruptFrameHeader:
            "is corrupt (a zstd frame's header asks for a larger window than pgclone writes)"
        }
    }
}

/// What ``DumpDecoder`` found.
package struct DecodedDump: Sendable {
    package var format: DumpFormat
    /// pgclone's metadata, if the object carries it.
    package var metadata: DumpMetadata?
    /// Bytes read from the stored object, and archive bytes produced.
    package var storedBytes: Int
    package var archiveBytes: Int
    /// Where each zstd frame ended, in the object and in the archive (with `recordingFrames`).
    package var frameEnds: [FrameEnd] = []
    /// Where the archive scanner may cut the archive decoded (with `recordingFrames`).
    package var cuts: [ArchiveScanner.Cut] = []

    package struct FrameEnd: Sendable, Hashable {
        package var stored: Int
        package var archive: Int

        package init(stored: Int, archive: Int) {
            self.stored = stored
            self.archive = archive
        }
    }

    package init(format: DumpFormat, metadata: DumpMetadata? = nil, storedBytes: Int, archiveBytes: Int) {
        self.format = format
        self.metadata = metadata
        self.storedBytes = storedBytes
        self.archiveBytes = archiveBytes
    }
}

/// The decoding stage of a restore: a stored object in, a custom-format archive out.
///
/// Sniffs the first bytes: a zstd stream (pgclone's format: metadata frame, then zstd frames) is
/// decompressed with a capped window and its checksums verified; a raw `PGDMP` archive passes
/// through; anything else is refused. Runs on its own serial queue.
package actor DumpDecoder {
    private let executor = DispatchQueueExecutor(label: "pgclone.decompress")
    package nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Metadata frames larger than this are not pgclone's; the decoder skips them.
    static let maximumMetadataSize = 1 << 20

    package let settings: ZstdDecompressionSettings

    package init(settings: ZstdDecompressionSettings) {
        self.settings = settings
    }

    /// Decodes `input` into `output`, which it finishes (with the error, if it fails).
    /// - Parameters:
    ///   - metadataRead: told what the dump says of itself (`nil`: nothing, a plain archive) before
    ///     the first archive byte is written to `output`.
    ///   - recordingFrames: the piece size to scan the archive with: the result then says where
    ///     each frame ended and where the archive may be cut, for checking an ``ArchiveIndex``.
    package func decode(
        _ input: ByteStream,
        into output: ByteStream.Source,
        metadataRead: (@Sendable (DumpMetadata?) -> Void)? = nil,
        recordingFrames pieceSize: Int? = nil
    ) async throws -> DecodedDump {
        try await output.finishing {
            var reader = ByteStreamReader(input)
            var format = DumpFormat.needMoreBytes
            var peeked = 8
            while format == .needMoreBytes {
                let head = try await reader.peek(peeked)
                format = DumpFormat.sniff(head, atEnd: head.count < peeked)
                peeked = DumpFormat.describeLength
            }
            var result = DecodedDump(format: format, storedBytes: 0, archiveBytes: 0)
            switch format {
            case .archive:
                metadataRead?(nil)
                while let chunk = try await reader.next() {
                    result.archiveBytes += chunk.readableBytes
                    try await output.write(chunk)
                }
            case .zstd:
                result.metadata = try await readMetadata(&reader)
                metadataRead?(result.metadata)
                var scanner = pieceSize.map { ArchiveScanner(pieceSize: $0) }
                (result.archiveBytes, result.frameEnds) = try await decompress(&reader, into: output, scanner: &scanner)
                if var scanner {
                    scanner.finish()
                    result.cuts = scanner.cuts
                }
            case .unrecognized(let description):
                throw DumpFormatError.unrecognized(description)
            case .needMoreBytes:
                preconditionFailure("sniffing stops once the stream ends")
            }
            result.storedBytes = reader.bytesRead
            return result
        }
    }

    /// Consumes pgclone's metadata frame if the object starts with one.
    private func readMetadata(_ reader: inout ByteStreamReader) async throws -> DumpMetadata? {
        let header = try await reader.peek(8)
        guard header.count == 8, header.starts(with: ZstdFrame.skippableMagicBytes) else { return nil }
        let size = header[4..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
        guard size <= Self.maximumMetadataSize else { return nil }
        let frame = try await reader.peek(8 + size)
        guard frame.count == 8 + size, let metadata = DumpMetadata(skippableFramePayload: Array(frame[8...])) else {
            // Not pgclone's: the decoder skips skippable frames itself.
            return nil
        }
        _ = try await reader.read(8 + size)
        return metadata
    }

    /// Decompresses the rest of `reader` into `output`; with a `scanner`, scans the archive and
    /// returns where each frame ended.
    private func decompress(
        _ reader: inout ByteStreamReader,
        into output: ByteStream.Source,
        scanner: inout ArchiveScanner?
    ) async throws -> (produced: Int, frameEnds: [DecodedDump.FrameEnd]) {
        var frameEnds: [DecodedDump.FrameEnd] = []
        let context = try ZstdDecompressionContext(settings: settings)
        let allocator = ByteBufferAllocator()
        var out = allocator.buffer(capacity: ZstdDecompressionContext.outputChunkSize)
        var produced = 0
        // zstd's hint from the last call that made progress: 0 right after a frame ends. Non-zero at
        // the end of input means a cut-off frame. (A call that makes no progress after a frame's end
        // returns the next header's size, which says nothing about truncation.)
        var hint = 1
        // The first block out must be a custom-format archive: a zstd stream of anything else (a
        // zero-filled "bomb", a plain SQL dump) is refused here, not fed to pg_restore.
        var checked = false
        func check(_ block: ByteBuffer) throws {
            guard !checked else { return }
            checked = true
            let head = Array(block.readableBytesView.prefix(DumpFormat.describeLength))
            guard head.starts(with: ZstdFrame.archiveMagic) else {
                throw DumpFormatError.unrecognized(
                    "its zstd stream holds no pg_dump archive: \(DumpFormat.describe(head))"
                )
            }
        }
        while var chunk = try await reader.next() {
            var outputFull = false
            repeat {
                do {
                    let (inputBefore, outputBefore) = (chunk.readableBytes, out.readableBytes)
                    let result = try context.step(input: &chunk, output: &out)
                    if chunk.readableBytes != inputBefore || out.readableBytes != outputBefore {
                        hint = result
                        if result == 0 && scanner != nil {
                            frameEnds.append(
                                .init(
                                    stored: reader.bytesRead - chunk.readableBytes,
                                    archive: produced + out.readableBytes
                                )
                            )
                        }
                    }
                } catch {
                    throw error.isWindowTooLarge
                        ? DumpFormatError.windowTooLarge(windowLogMax: settings.windowLogMax)
                        : DumpFormatError.corrupt(error)
                }
                outputFull = out.writableBytes == 0
                if outputFull {
                    try check(out)
                    if scanner != nil { _ = out.withUnsafeReadableBytes { scanner!.scan($0) } }
                    produced += out.readableBytes
                    try await output.write(out)
                    out = allocator.buffer(capacity: ZstdDecompressionContext.outputChunkSize)
                }
            } while chunk.readableBytes > 0 || outputFull
        }
        // A cut-off stream is that first, whatever it held so far.
        guard hint == 0 else { throw DumpFormatError.truncated }
        if out.readableBytes > 0 || !checked {
            try check(out)
            if scanner != nil { _ = out.withUnsafeReadableBytes { scanner!.scan($0) } }
            produced += out.readableBytes
            try await output.write(out)
        }
        return (produced, frameEnds)
    }
}
