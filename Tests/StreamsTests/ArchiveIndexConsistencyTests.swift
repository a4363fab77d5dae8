import PGCloneStreams
import Testing

/// An index read from storage is checked before its ranges are used: a range's bounds must be in
/// order, or making it traps.
@Suite struct ArchiveIndexConsistencyTests {
    static func index(_ frames: [(Int, Int, Int?)], stored: Int = 100, archive: Int = 400) -> ArchiveIndex {
        ArchiveIndex(
            pieceSize: 4 << 20,
            archiveBytes: archive,
            storedBytes: stored,
            frames: frames.map { ArchiveIndex.Frame(stored: $0.0, archive: $0.1, dumpID: $0.2, startsBlock: true) }
        )
    }

    @Test func framesInOrderInsideTheObjectAreConsistent() {
        #expect(Self.index([(10, 0, nil), (40, 200, 7), (70, 300, 8)]).isConsistent(storedSize: 120))
    }

    @Test(arguments: [
        (index([(10, 0, nil), (40, 200, 7), (30, 300, 8)]), "stored offsets out of order"),
        (index([(10, 0, nil), (40, 300, 7), (70, 300, 8)]), "an empty archive range"),
        (index([(10, 0, nil), (40, 200, 7), (100, 300, 8)]), "a frame starting where the frames end"),
        (index([(10, 0, nil), (40, 200, 7)], stored: 130), "frames ending past the object"),
        (index([(10, 0, 3), (40, 200, 7)]), "a first frame that is a data block's"),
        (index([(10, 5, nil), (40, 200, 7)]), "a first frame that does not start the archive"),
        (index([]), "no frames"),
    ])
    func anIndexThatDoesNotFitIsRefused(index: ArchiveIndex, what: String) {
        #expect(!index.isConsistent(storedSize: 120), "\(what)")
    }
}
