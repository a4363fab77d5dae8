import NIOCore
import PGCloneStreams
import Testing

/// The rows of a piece of table data, as COPY takes them.
@Suite struct TableDataPieceTests {
    /// pg_dump's integer: a sign byte, then 4 bytes, least significant first.
    static func int(_ value: Int) -> [UInt8] {
        [value < 0 ? 1 : 0] + withUnsafeBytes(of: UInt32(abs(value)).littleEndian) { Array($0) }
    }

    /// Chunks as pg_dump writes them: a length, then the bytes.
    static func chunks(_ rows: [String]) -> [UInt8] {
        rows.flatMap { int($0.utf8.count) + Array($0.utf8) }
    }

    static let header = [UInt8(1)] + int(215)

    @Test func aWholeBlockGivesItsRowsWithoutTheEndMarker() throws {
        let piece = Self.header + Self.chunks(["1\ta\n", "2\t\\\\.\n", "\\.\n\n\n"]) + Self.int(0)
        let (rows, endsBlock) = try TableDataPiece.rows(
            of: ByteBuffer(bytes: piece),
            startsBlock: true,
            dumpID: 215,
            intSize: 4
        )
        #expect(String(buffer: rows) == "1\ta\n2\t\\\\.\n")
        #expect(endsBlock)
    }

    @Test func aPieceInsideABlockHasNoHeaderAndMayEndItOrNot() throws {
        let middle = try TableDataPiece.rows(
            of: ByteBuffer(bytes: Self.chunks(["3\tc\n", "4\td\n"])),
            startsBlock: false,
            dumpID: 215,
            intSize: 4
        )
        #expect(String(buffer: middle.rows) == "3\tc\n4\td\n")
        #expect(!middle.endsBlock)
        // pg_dump 18 writes the marker with one newline; the block's end may be a piece alone.
        let last = try TableDataPiece.rows(
            of: ByteBuffer(bytes: Self.chunks(["\\.\n"]) + Self.int(0)),
            startsBlock: false,
            dumpID: 215,
            intSize: 4
        )
        #expect(last.rows.readableBytes == 0)
        #expect(last.endsBlock)
    }

    @Test(arguments: [
        (Self.header + chunks(["1\ta\n"]), 216, "the piece holds the data of dump id 215, not 216"),
        ([UInt8(3)] + int(215), 215, "the piece does not start a data block"),
        (header + Array(chunks(["1\ta\n"]).dropLast()), 215, "the piece ends inside a row"),
        (header + int(0) + chunks(["1\ta\n"]), 215, "bytes after the end of its data block"),
        (header + int(-4), 215, "a negative chunk length"),
    ])
    func whatIsNotARunOfRowsIsRefused(piece: [UInt8], dumpID: Int, reason: String) {
        #expect(throws: ArchiveFormatError.unreadable(reason)) {
            try TableDataPiece.rows(of: ByteBuffer(bytes: piece), startsBlock: true, dumpID: dumpID, intSize: 4)
        }
    }
}
