import NIOCore
import PGCloneStreams
import PGCloneTestSupport
import Testing

/// The zstd stages and format sniffing, end to end through byte streams.
@Suite struct DumpCodecTests {
    static let metadata = DumpMetadata(
        pgcloneVersion: "test",
        serverVersion: "15.18",
        database: "app",
        dumpConfig: "default",
        createdAt: "2026-11-26T00:00:00.000000Z",
        settings: [DatabaseSetting(role: nil, name: "search_path", value: "app, public")]
    )

    /// Pseudo-random but compressible bytes, like table data.
    static func sampleArchive(size: Int) -> [UInt8] {
        var state: UInt32 = 12345
        var bytes = Array("PGDMP".utf8)
        while bytes.count < size {
            state = state &* 1_103_515_245 &+ 12345
            let word = "row \(state % 1000) value \(state % 97)\n"
            bytes += word.utf8
        }
        return Array(bytes.prefix(size))
    }

    static func encode(
        _ archive: [UInt8],
        settings: ZstdCompressionSettings = ZstdCompressionSettings(),
        metadata: DumpMetadata? = metadata
    ) async throws -> [UInt8] {
        try await ZstdFixtures.encode(archive, settings: settings, metadata: metadata)
    }

    /// Decodes `stored`; returns the result, the output and the largest output chunk.
    static func decode(_ stored: [UInt8], windowLogMax: Int = 23) async throws -> (DecodedDump, [UInt8], Int) {
        let (input, inputSource) = ByteStream.makeStream(backpressureStrategy: .capacity(.kibibytes(256)))
        let (output, outputSource) = ByteStream.makeStream(backpressureStrategy: .capacity(.kibibytes(256)))
        var settings = ZstdDecompressionSettings()
        settings.windowLogMax = windowLogMax
        let decoder = DumpDecoder(settings: settings)
        async let decoded = decoder.decode(input, into: outputSource)
        async let fed: Void = ZstdFixtures.feed(stored, into: inputSource, chunk: 3000)
        var archive: [UInt8] = []
        var largest = 0
        do {
            for try await chunk in output {
                archive += chunk.readableBytesView
                largest = max(largest, chunk.readableBytes)
            }
        } catch {
            _ = try? await fed
            _ = try await decoded
            throw error
        }
        try await fed
        return (try await decoded, archive, largest)
    }

    @Test(arguments: [0, 2])
    func roundTripKeepsBytesAndMetadata(workers: Int) async throws {
        let archive = Self.sampleArchive(size: 3 << 20)
        var settings = ZstdCompressionSettings()
        settings.workers = workers
        let stored = try await Self.encode(archive, settings: settings)
        #expect(stored.count < archive.count / 2)
        #expect(Array(stored.prefix(4)) == [0x50, 0x2A, 0x4D, 0x18])
        let (decoded, restored, largest) = try await Self.decode(stored)
        #expect(decoded.format == .zstd)
        #expect(decoded.metadata == Self.metadata)
        #expect(decoded.storedBytes == stored.count)
        #expect(decoded.archiveBytes == archive.count)
        #expect(restored == archive)
        // Output comes in window-sized pieces (ZSTD_DStreamOutSize, 128 KiB), never more.
        #expect(largest <= 128 << 10)
    }

    @Test func aWrongChecksumIsCorruption() async throws {
        var stored = try await Self.encode(Self.sampleArchive(size: 1 << 20))
        stored[stored.count - 1] ^= 0xFF
        await #expect {
            try await Self.decode(stored)
        } throws: { error in
            guard case DumpFormatError.corrupt(let zstd) = error else { return false }
            return zstd.isCorruption && "\(error)".hasPrefix("is corrupt")
        }
    }

    @Test func damagedDataIsCorruption() async throws {
        var stored = try await Self.encode(Self.sampleArchive(size: 1 << 20))
        for index in stride(from: stored.count / 3, to: stored.count / 3 + 64, by: 1) { stored[index] ^= 0x5A }
        await #expect {
            try await Self.decode(stored)
        } throws: { error in
            if case DumpFormatError.corrupt = error { return true }
            return false
        }
    }

    @Test func aCutOffStreamIsTruncated() async throws {
        let stored = try await Self.encode(Self.sampleArchive(size: 1 << 20))
        await #expect {
            try await Self.decode(Array(stored.prefix(stored.count / 2)))
        } throws: { error in
            if case DumpFormatError.truncated = error { return true }
            return false
        }
        // Only the metadata frame: no archive at all.
        let metadataOnly = try Self.metadata.skippableFrame()
        await #expect {
            try await Self.decode(metadataOnly)
        } throws: { error in
            if case DumpFormatError.truncated = error { return true }
            return false
        }
    }

    /// Frames decompressed a chunk at a time (an indexed dump's table of contents): every chunk at
    /// most the size asked for, all of them the archive; cut short, truncated; damaged, corrupt.
    @Test func framesDecompressChunkByChunk() async throws {
        let archive = Self.sampleArchive(size: 300_000)
        let stored = try await Self.encode(archive, metadata: nil)
        var chunks: [ByteBuffer] = []
        try ZstdFrame.decompress(ByteBuffer(bytes: stored), settings: .init(), chunkSize: 4096) { chunks.append($0) }
        #expect(chunks.count > 70 && chunks.allSatisfy { (1...4096).contains($0.readableBytes) })
        #expect(chunks.flatMap { Array($0.readableBytesView) } == archive)
        #expect {
            try ZstdFrame.decompress(ByteBuffer(bytes: stored.dropLast(40)), settings: .init(), chunkSize: 4096) { _ in
            }
        } throws: { error in
            if case DumpFormatError.truncated = error { return true }
            return false
        }
        var damaged = stored
        damaged[damaged.count / 2] ^= 0xFF
        #expect {
            try ZstdFrame.decompress(ByteBuffer(bytes: damaged), settings: .init(), chunkSize: 4096) { _ in }
        } throws: { error in
            if case DumpFormatError.corrupt = error { return true }
            return false
        }
    }

    @Test func aFrameAskingForALargerWindowIsRefused() async throws {
        var settings = ZstdCompressionSettings()
        settings.workers = 0
        settings.windowLog = 25
        let stored = try await Self.encode(Self.sampleArchive(size: 1 << 20), settings: settings, metadata: nil)
        await #expect {
            try await Self.decode(stored, windowLogMax: 23)
        } throws: { error in
            guard case DumpFormatError.windowTooLarge(23) = error else { return false }
            return "\(error)".contains("8 MiB")
        }
        // The same frame decodes where the budget allows its window.
        let (_, restored, _) = try await Self.decode(stored, windowLogMax: 25)
        #expect(restored.count == 1 << 20)
    }

    @Test func aRawCustomFormatArchivePassesThrough() async throws {
        let archive = Self.sampleArchive(size: 500_000)
        let (decoded, restored, _) = try await Self.decode(archive)
        #expect(decoded.format == .archive)
        #expect(decoded.metadata == nil)
        #expect(restored == archive)
    }

    @Test func zstdWithoutMetadataDecodes() async throws {
        let archive = Self.sampleArchive(size: 200_000)
        let (decoded, restored, _) = try await Self.decode(try await Self.encode(archive, metadata: nil))
        #expect(decoded.metadata == nil)
        #expect(restored == archive)
    }

    @Test(arguments: [
        ("", "it is empty"),
        ("hello world, this is not a dump\n", "it is text beginning \"hello world, this is not a dump\""),
        ("--\n-- PostgreSQL database dump\n--\nSET statement_timeout = 0;\n", "plain-SQL dump"),
        ("\u{1F}\u{7F}\u{08}\u{00}binary", "it begins with bytes 1f 7f 08 00 62 69 6e 61"),
    ])
    func otherContentIsRefusedWithADescription(content: String, expected: String) async throws {
        try await expectUnrecognized(Array(content.utf8), expected)
    }

    @Test func compressedFilesOfOtherToolsAreNamed() async throws {
        try await expectUnrecognized(
            [0x1F, 0x8B, 0x08, 0x00] + Array(repeating: 0, count: 300),
            "it looks like a gzip file"
        )
        var tar = Array(repeating: UInt8(0), count: 512)
        tar.replaceSubrange(257..<262, with: Array("ustar".utf8))
        try await expectUnrecognized(tar, "tar archive (pg_dump -Ft)")
    }

    /// A zstd stream of something else — 8 MiB of zeros that compress to a few hundred bytes, a
    /// plain SQL dump — is refused by the decoder, with what it holds, before pg_restore sees it.
    @Test func aZstdStreamOfAnythingButAnArchiveIsRefused() async throws {
        try await expectUnrecognized(
            try await Self.encode(Array(repeating: 0, count: 8 << 20), metadata: nil),
            "its zstd stream holds no pg_dump archive: it begins with bytes 00 00 00 00 00 00 00 00"
        )
        try await expectUnrecognized(
            try await Self.encode(Array("--\n-- PostgreSQL database dump\n--\n".utf8)),
            "its zstd stream holds no pg_dump archive: it looks like a plain-SQL dump"
        )
        try await expectUnrecognized(
            try await Self.encode([], metadata: nil),
            "its zstd stream holds no pg_dump archive: it is empty"
        )
    }

    private func expectUnrecognized(_ bytes: [UInt8], _ expected: String) async throws {
        await #expect {
            try await Self.decode(bytes)
        } throws: { error in
            guard case DumpFormatError.unrecognized(let description) = error else { return false }
            return description.contains(expected)
        }
    }

    @Test func sniffingWaitsForEnoughBytes() {
        #expect(DumpFormat.sniff([0x28, 0xB5], atEnd: false) == .needMoreBytes)
        #expect(DumpFormat.sniff([0x28, 0xB5, 0x2F, 0xFD], atEnd: false) == .zstd)
        #expect(DumpFormat.sniff([0x5E, 0x2A, 0x4D, 0x18], atEnd: false) == .zstd)
        #expect(DumpFormat.sniff(Array("PGDM".utf8), atEnd: false) == .needMoreBytes)
        #expect(DumpFormat.sniff(Array("PGDMP".utf8), atEnd: false) == .archive)
        #expect(DumpFormat.sniff(Array("PGDM".utf8), atEnd: true) == .unrecognized("it is text beginning \"PGDM\""))
    }

    @Test func listSettingsSplitLikePgDump() {
        // Exercised through DatabaseSwap in the integration tests; here the sizes parse.
        #expect(ByteCount(parsing: "64MiB") == .mebibytes(64))
        #expect(ByteCount(parsing: "512 KiB") == .kibibytes(512))
        #expect(ByteCount(parsing: "1G") == .mebibytes(1024))
        #expect(ByteCount(parsing: "100") == .bytes(100))
        #expect(ByteCount(parsing: "lots") == nil)
        #expect(ByteCount(parsing: "64XB") == nil)
        #expect("\(ByteCount.mebibytes(64))" == "64 MiB")
    }
}

/// What messages show of a database setting: PostgreSQL's own with their values, custom ones
/// (which may hold a secret) by name alone.
@Suite struct DatabaseSettingShownTests {
    @Test func aCustomSettingsValueIsNotShown() {
        #expect(DatabaseSetting(role: nil, name: "work_mem", value: "7MB").shown == "work_mem = 7MB")
        #expect(DatabaseSetting(role: "app", name: "myapp.password", value: "Sekret").shown == "myapp.password")
    }
}
