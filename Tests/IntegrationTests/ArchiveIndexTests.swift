import Foundation
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
        case .damaged(let reason):
            Issue.record("a damaged index: \(reason)")
            return nil
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
        // Decompressed on a thread of its own, off the tests' two-thread shared pool.
        let (wrongFrames, whole) = await ArchiveScannerTests.offThePool {
            let settings = ZstdDecompressionSettings()
            let wrong = index.frames.indices.filter { number in
                let (storedRange, archiveRange) = index.ranges(of: number)
                let piece = try? ZstdFrame.decompress(ByteBuffer(bytes: stored[storedRange]), settings: settings)
                return piece.map { Array($0.readableBytesView) } != Array(archive[archiveRange])
            }
            let whole = try? ZstdFrame.decompress(ByteBuffer(bytes: stored), settings: settings)
            return (wrong, whole.map { Array($0.readableBytesView) })
        }
        #expect(wrongFrames.isEmpty, "frames that are not their slice of the archive: \(wrongFrames)")
        // Read whole, the object is the archive: the index's frame is skipped.
        #expect(whole == archive)
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

/// `pgclone dump` writes the index, and `pgclone verify` checks it against the dump.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "needs PostgreSQL (scripts/test.sh)"))
struct DumpIndexTests {
    /// The big table of ``dumpsAreIndexedAndVerifyChecksTheIndex`` in `source`.
    static func seed(_ server: PostgresServer, _ source: String) async throws {
        try await server.createDatabase(source)
        // 3 tables, one of about 11 MiB of rows: more than two 4 MiB pieces.
        try await server.psql(
            """
            CREATE TABLE big AS SELECT i, md5(i::text) || md5((i * 7)::text) AS a FROM generate_series(1, 140000) AS i;
            CREATE TABLE small (x int); INSERT INTO small VALUES (1);
            CREATE TABLE empty (x int);
            """,
            database: source
        )
    }

    /// On S3 the index is read with a suffix-range GET of the object's last 64 KiB, far from its
    /// first bytes in a 5 MiB dump.
    @Test(.enabled(if: TestEnvironment.hasPostgresAndS3, "needs S3 (scripts/test.sh)"))
    func verifyReadsAnS3DumpsIndexFromItsEnd() async throws {
        let (pgclone, environment) = try await SeriesTests.setUp(.s3)
        let source = TestEnvironment.uniqueName("indexed_s3")
        try await Self.seed(pgclone.server, source)
        let dumped = try await pgclone.run(
            ["dump", "--database", pgclone.server.url(source)],
            environment: environment
        )
        #expect(dumped.exitCode == 0, "\(dumped)")
        let key = dumped.stdout.trimmingWhitespace()
        let verified = try await pgclone.run(["verify", key], environment: environment)
        #expect(verified.exitCode == 0, "\(verified)")
        #expect(verified.stdout.hasSuffix(", 6 pieces indexed)\n"), "\(verified)")
    }

    @Test func dumpsAreIndexedAndVerifyChecksTheIndex() async throws {
        let pgclone = try PGCloneHarness()
        let source = TestEnvironment.uniqueName("indexed")
        try await Self.seed(pgclone.server, source)
        let key = try await pgclone.dump(source)
        let stored = [UInt8](try pgclone.storedData(key))
        let index = try #require(try ArchiveIndexTests.index(of: stored))
        // The table of contents, the three blocks, and big's rows cut into 4 MiB pieces.
        #expect(index.frames.filter(\.startsBlock).count == 4)
        #expect(index.frames.filter { !$0.startsBlock }.count == 2)
        #expect(index.pieceSize == 4 << 20)
        let good = try await pgclone.run(["verify", key])
        #expect(good.exitCode == 0, "\(good)")
        #expect(good.stdout.hasSuffix(", 6 pieces indexed)\n"), "\(good)")
        let json = try await pgclone.run(["verify", key, "--json"])
        #expect(json.stdout.contains("\"indexed_pieces\":6,"), "\(json)")

        // An index that puts a frame's start one byte off is caught, in one line.
        var wrong = index
        wrong.frames[2].stored += 1
        let indexLength = try index.skippableFrame().count
        try pgclone.store(Data(stored.dropLast(indexLength) + (try wrong.skippableFrame())), as: key)
        let caught = try await pgclone.run(["verify", key])
        #expect(caught.exitCode == 1, "\(caught)")
        let (end, archiveEnd) = (index.frames[2].stored + 1, index.frames[2].archive)
        #expect(
            caught.stderr.split(separator: "\n").last
                == """
                pgclone: error: the dump \(key) has an index that does not match its archive: frame 2 ends at \
                byte \(end) (archive byte \(archiveEnd)) by the index, at byte \(end - 1) (archive byte \(archiveEnd)) \
                in the dump
                """,
            "\(caught)"
        )
    }
}
