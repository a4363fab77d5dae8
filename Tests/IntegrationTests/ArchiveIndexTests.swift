import NIOCore
import PGCloneStreams
import PGCloneTestSupport
import Testing

/// Dumps that can be read in pieces: the encoder starts a zstd frame wherever the scanner may cut
/// pg_dump's archive, and ends the object with an index of the frames; each frame decompresses on
/// its own into exactly its slice of the archive, and the whole still decompresses in one stream.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "needs PostgreSQL (scripts/test.sh)"))
struct ArchiveIndexTests {
    /// `archive` through the dump's encoder, fed in chunks of 100 kB.
    static func encode(_ archive: [UInt8], pieceSize: Int) async throws -> [UInt8] {
        let (input, inputSource) = ByteStream.makeStream(backpressureStrategy: .capacity(.mebibytes(1)))
        let (output, outputSource) = ByteStream.makeStream(backpressureStrategy: .capacity(.mebibytes(1)))
        let encoder = DumpEncoder(settings: ZstdCompressionSettings())
        async let encoded = encoder.encode(input, into: outputSource, metadata: nil, pieceSize: pieceSize)
        async let fed: Void = {
            var offset = 0
            while offset < archive.count {
                let end = min(archive.count, offset + 100_000)
                try await inputSource.write(ByteBuffer(bytes: archive[offset..<end]))
                offset = end
            }
            inputSource.finish()
        }()
        var stored: [UInt8] = []
        for try await chunk in output { stored += chunk.readableBytesView }
        try await fed
        #expect(try await encoded == stored.count)
        return stored
    }

    static func index(of stored: [UInt8]) throws -> ArchiveIndex? {
        switch ArchiveIndex.read(tail: Array(stored.suffix(16))) {
        case .none: return nil
        case .index(let index): return index
        case .needsBytes(let count):
            guard case .index(let index) = ArchiveIndex.read(tail: Array(stored.suffix(count))) else {
                Issue.record("the tail's length does not lead to the index")
                return nil
            }
            return index
        }
    }

    @Test(arguments: PostgresServer.all)
    func everyFrameIsItsSliceOfTheArchive(server: PostgresServer) async throws {
        let (archive, _) = try await ArchiveScannerTests.archive(server)
        let stored = try await Self.encode(archive, pieceSize: 64 << 10)
        let index = try #require(try Self.index(of: stored))
        #expect(index.archiveBytes == archive.count)
        #expect(index.pieceSize == 64 << 10)
        #expect(index.frames.first == ArchiveIndex.Frame(stored: 0, archive: 0, dumpID: nil, startsBlock: true))
        // The frames are the scanner's cuts, in order.
        let scanner = ArchiveScannerTests.scan(archive, chunkSize: 1 << 16, pieceSize: 64 << 10)
        #expect(index.frames.dropFirst().map(\.archive) == scanner.cuts.map(\.offset))
        #expect(index.frames.dropFirst().map(\.dumpID) == scanner.cuts.map(\.dumpID))
        #expect(index.frames.count > 15)
        let settings = ZstdDecompressionSettings()
        for number in index.frames.indices {
            let (storedRange, archiveRange) = index.ranges(of: number)
            let piece: ByteBuffer
            do {
                piece = try ZstdFrame.decompress(ByteBuffer(bytes: stored[storedRange]), settings: settings)
            } catch {
                Issue.record("frame \(number) of \(index.frames.count) \(storedRange) \(archiveRange): \(error)")
                continue
            }
            #expect(Array(piece.readableBytesView) == Array(archive[archiveRange]), "frame \(number)")
        }
        // Read whole, the object is the archive: the index's frame is skipped.
        let whole = try ZstdFrame.decompress(ByteBuffer(bytes: stored), settings: settings)
        #expect(Array(whole.readableBytesView) == archive)
    }

    /// An archive the scanner does not read (pg_dump's own compression) gets no index, and its
    /// frames decompress to it as before.
    @Test func anArchiveItCannotReadGetsNoIndex() async throws {
        let (archive, _) = try await ArchiveScannerTests.archive(try PostgresServer.shared, compress: "1")
        let stored = try await Self.encode(archive, pieceSize: 64 << 10)
        #expect(try Self.index(of: stored) == nil)
        let whole = try ZstdFrame.decompress(ByteBuffer(bytes: stored), settings: ZstdDecompressionSettings())
        #expect(Array(whole.readableBytesView) == archive)
    }
}
