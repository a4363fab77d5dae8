import PGCloneStreams
import Testing

/// `verify` compares a dump's index with what decoding the dump finds: each frame must start
/// where the scanner may cut the archive, and each data block must start a frame. An index may cut
/// less than this build's scanner: dumps of builds that left large objects' blocks whole (before
/// 2026-11-30) are as good, and restore in pieces as well.
@Suite struct ArchiveIndexMismatchTests {
    typealias Cut = ArchiveScanner.Cut

    /// A dump of two blocks: table data (dump id 7) from archive byte 100, cut at a row at 200,
    /// and large objects (dump id 9) from 300, which this build's scanner cuts at 400 too.
    static let scanned = [
        Cut(offset: 100, dumpID: 7, startsBlock: true), Cut(offset: 200, dumpID: 7, startsBlock: false),
        Cut(offset: 300, dumpID: 9, startsBlock: true), Cut(offset: 400, dumpID: 9, startsBlock: false),
    ]

    /// The index of frames starting at `cuts` (the table of contents' first), and the dump decoded
    /// from an object of those frames, 10 stored bytes per 100 archive bytes.
    static func dump(frames cuts: [Cut]) -> (ArchiveIndex, DecodedDump) {
        let starts = [0] + cuts.map(\.offset)
        let index = ArchiveIndex(
            pieceSize: 100,
            archiveBytes: 500,
            storedBytes: 50,
            frames: [ArchiveIndex.Frame(stored: 0, archive: 0, dumpID: nil, startsBlock: true)]
                + cuts.map {
                    ArchiveIndex.Frame(
                        stored: $0.offset / 10,
                        archive: $0.offset,
                        dumpID: $0.dumpID,
                        startsBlock: $0.startsBlock
                    )
                }
        )
        var decoded = DecodedDump(format: .zstd, storedBytes: 50, archiveBytes: 500)
        decoded.frameEnds = (starts.dropFirst() + [500]).map { DecodedDump.FrameEnd(stored: $0 / 10, archive: $0) }
        decoded.cuts = scanned
        return (index, decoded)
    }

    @Test func anIndexOfEveryCutMatches() {
        let (index, decoded) = Self.dump(frames: Self.scanned)
        #expect(index.mismatch(with: decoded) == nil)
    }

    @Test func anIndexThatLeavesALargeObjectsBlockWholeMatches() {
        let (index, decoded) = Self.dump(frames: Array(Self.scanned.prefix(3)))
        #expect(index.mismatch(with: decoded) == nil)
    }

    @Test func aFrameStartingInsideARowIsCaught() {
        let (index, decoded) = Self.dump(frames: [
            Self.scanned[0], Cut(offset: 250, dumpID: 7, startsBlock: false), Self.scanned[2],
        ])
        #expect(index.mismatch(with: decoded) == "frame 3 does not start the piece of the archive the index says")
    }

    @Test func aBlockNoFrameStartsIsCaught() {
        let (index, decoded) = Self.dump(frames: Array(Self.scanned.prefix(2)))
        #expect(index.mismatch(with: decoded) == "no frame starts the data block at archive byte 300")
    }
}
