import Foundation

/// Where each piece of a dump's archive is in the stored object: pgclone starts a zstd frame at the
/// table of contents' end, at every data block, and inside a table's data at a row every few MiB
/// (``ArchiveScanner``), and records each frame's offsets here. A frame decompresses on its own
/// into its slice of the archive, so a restore can fetch and load pieces in parallel.
///
/// Stored at the end of the object as a zstd skippable frame (which `zstd -d` skips): magic
/// `0x184D2A51`, the payload's length, then the JSON, the JSON's length (4 bytes, little-endian)
/// and `PGCINDEX` — so the object's last bytes say where the index begins.
package struct ArchiveIndex: Codable, Sendable, Hashable {
    /// Always `pgclone-index`.
    package var format = "pgclone-index"
    package var formatVersion = 1
    /// Bytes of table data after which a row starts a new piece.
    package var pieceSize: Int
    /// The archive's length, decompressed.
    package var archiveBytes: Int
    /// Where the frames end in the stored object (the index frame starts there).
    package var storedBytes: Int
    /// The frames in order: the first holds the header and table of contents.
    package var frames: [Frame]

    package struct Frame: Codable, Sendable, Hashable {
        /// Where the frame starts in the stored object.
        package var stored: Int
        /// Where its bytes start in the archive.
        package var archive: Int
        /// The dump id of the data block it is in; `nil` for the table of contents.
        package var dumpID: Int?
        /// Whether it starts its data block (else it starts at a row inside it).
        package var startsBlock: Bool

        package init(stored: Int, archive: Int, dumpID: Int?, startsBlock: Bool) {
            self.stored = stored
            self.archive = archive
            self.dumpID = dumpID
            self.startsBlock = startsBlock
        }
    }

    package init(pieceSize: Int, archiveBytes: Int, storedBytes: Int, frames: [Frame]) {
        self.pieceSize = pieceSize
        self.archiveBytes = archiveBytes
        self.storedBytes = storedBytes
        self.frames = frames
    }

    /// Whether the frames are in order inside an object of `storedSize` bytes, each of at least
    /// one byte stored and decompressed, the first the table of contents': what an index read
    /// from storage must be before ``ranges(of:)`` may be asked.
    package func isConsistent(storedSize: Int) -> Bool {
        guard let first = frames.first, first.dumpID == nil, first.stored >= 0, first.archive == 0,
            storedBytes <= storedSize
        else { return false }
        // Compared before any range is made of them: a range's bounds must be in order.
        let ends = frames.dropFirst().map { ($0.stored, $0.archive) } + [(storedBytes, archiveBytes)]
        return zip(frames, ends).allSatisfy { frame, end in frame.stored < end.0 && frame.archive < end.1 }
    }

    /// Frame `index`'s bytes: in the stored object, and in the archive (``isConsistent(storedSize:)``
    /// first, for an index read from storage).
    package func ranges(of index: Int) -> (stored: Range<Int>, archive: Range<Int>) {
        let next = index + 1 < frames.count ? frames[index + 1] : nil
        return (
            frames[index].stored..<(next?.stored ?? storedBytes),
            frames[index].archive..<(next?.archive ?? archiveBytes)
        )
    }

    static let magic: [UInt8] = [0x51, 0x2A, 0x4D, 0x18]
    static let trailer = Array("PGCINDEX".utf8)

    /// The index as the skippable frame that ends a dump.
    package func skippableFrame() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = Array(try encoder.encode(self))
        let payload = json + Self.littleEndian(json.count) + Self.trailer
        return Self.magic + Self.littleEndian(payload.count) + payload
    }

    /// What the last bytes of an object say of an index frame there.
    package enum Tail: Sendable, Hashable {
        /// The index.
        case index(ArchiveIndex)
        /// There is one, and it takes this many bytes from the end: read that many.
        case needsBytes(Int)
        /// The object does not end with pgclone's index.
        case none
        /// It ends like one, but what comes before does not read as one: why.
        case damaged(String)
    }

    /// Reads the index from the last bytes of an object (all of it, or its tail).
    package static func read(tail: [UInt8]) -> Tail {
        guard tail.count >= 12, Array(tail.suffix(8)) == trailer else { return .none }
        let jsonLength = tail[tail.count - 12..<tail.count - 8].reversed().reduce(0) { $0 << 8 | Int($1) }
        let frameLength = 8 + jsonLength + 12
        guard tail.count >= frameLength else { return .needsBytes(frameLength) }
        let frame = Array(tail.suffix(frameLength))
        guard Array(frame.prefix(4)) == magic,
            frame[4..<8].reversed().reduce(0, { $0 << 8 | Int($1) }) == jsonLength + 12
        else { return .damaged("its frame header does not match its length") }
        guard let index = try? JSONDecoder().decode(ArchiveIndex.self, from: Data(frame[8..<8 + jsonLength])),
            index.format == "pgclone-index"
        else { return .damaged("its JSON does not read as an index") }
        return .index(index)
    }

    private static func littleEndian(_ value: Int) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}

extension ArchiveIndex {
    /// What is wrong with the index next to what decoding the dump found (`decoded`, with its frames
    /// recorded and the archive scanned at ``pieceSize``); `nil` if it describes the dump exactly.
    package func mismatch(with decoded: DecodedDump) -> String? {
        guard isConsistent(storedSize: decoded.storedBytes) else {
            return "its frames are out of order or outside the object"
        }
        guard archiveBytes == decoded.archiveBytes else {
            return "it counts \(archiveBytes) archive bytes, the dump holds \(decoded.archiveBytes)"
        }
        // The frames that produced archive bytes (a skippable frame produces none).
        var ends: [DecodedDump.FrameEnd] = []
        for end in decoded.frameEnds where end.archive > (ends.last?.archive ?? 0) {
            ends.append(end)
        }
        let expected = frames.indices.map { number in
            let (stored, archive) = ranges(of: number)
            return DecodedDump.FrameEnd(stored: stored.upperBound, archive: archive.upperBound)
        }
        if let number = Self.firstDifference(expected, ends) {
            let found =
                number < ends.count
                ? "byte \(ends[number].stored) (archive byte \(ends[number].archive))" : "no such frame"
            let said =
                number < expected.count
                ? "byte \(expected[number].stored) (archive byte \(expected[number].archive))" : "no such frame"
            return "frame \(number + 1) ends at \(said) by the index, at \(found) in the dump"
        }
        // Each frame starts where the scanner may cut (a block, or a row once a piece's size has
        // passed), and each block starts a frame. An index may cut less than this build's scanner
        // does: those of builds before large objects' blocks were cut inside are as good.
        let cuts = frames.dropFirst().map {
            ArchiveScanner.Cut(offset: $0.archive, dumpID: $0.dumpID ?? -1, startsBlock: $0.startsBlock)
        }
        let possible = Set(decoded.cuts)
        if let number = cuts.firstIndex(where: { !possible.contains($0) }) {
            return "frame \(number + 2) does not start the piece of the archive the index says"
        }
        let indexed = Set(cuts)
        if let block = decoded.cuts.first(where: { $0.startsBlock && !indexed.contains($0) }) {
            return "no frame starts the data block at archive byte \(block.offset)"
        }
        return nil
    }

    /// The first position where `a` and `b` differ (the shorter one's end, if one goes on).
    private static func firstDifference<Element: Equatable>(_ a: [Element], _ b: [Element]) -> Int? {
        for index in 0..<min(a.count, b.count) where a[index] != b[index] { return index }
        return a.count == b.count ? nil : min(a.count, b.count)
    }
}
