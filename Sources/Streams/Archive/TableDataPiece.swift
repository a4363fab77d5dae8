package import NIOCore

/// The rows of one piece of a table's data block (an ``ArchiveIndex`` frame, decompressed), as
/// `COPY … FROM stdin` takes them: the block's header (type and dump id) and the chunks' lengths
/// taken out, and pg_dump's end-of-data line (`\.`) too, which the COPY protocol's end replaces.
///
/// pg_dump writes one chunk per row (`dumpTableData_copy`, one `PQgetCopyData` row per
/// `WriteData`), and the scanner cuts only between chunks, so a piece holds whole rows.
package enum TableDataPiece {
    /// pg_dump's end-of-data lines: `\.` and three newlines (pg_dump 12 to 17), or one. A row of
    /// COPY text cannot be either: a backslash in data is always doubled.
    static let endMarkers: [[UInt8]] = [Array("\\.\n\n\n".utf8), Array("\\.\n".utf8)]

    /// The rows in `piece`.
    /// - Parameters:
    ///   - startsBlock: whether the piece starts its data block (with the block's header).
    ///   - dumpID: the table data entry the block must belong to.
    ///   - intSize: the archive's integer size.
    /// - Returns: the rows, and whether the piece ended its block.
    /// - Throws: ``ArchiveFormatError`` if the piece is not such a run of chunks.
    package static func rows(
        of piece: ByteBuffer,
        startsBlock: Bool,
        dumpID: Int,
        intSize: Int
    ) throws(ArchiveFormatError) -> (rows: ByteBuffer, endsBlock: Bool) {
        var input = piece
        func int() throws(ArchiveFormatError) -> Int {
            guard let sign = input.readInteger(as: UInt8.self),
                let bytes = input.readBytes(length: intSize)
            else { throw .unreadable("the piece ends inside a length") }
            let magnitude = bytes.reversed().reduce(0) { $0 << 8 | Int($1) }
            return sign == 0 ? magnitude : -magnitude
        }
        if startsBlock {
            let type = input.readInteger(as: UInt8.self)
            guard type == ArchiveScanner.blockData else { throw .unreadable("the piece does not start a data block") }
            let found = try int()
            guard found == dumpID else {
                throw .unreadable("the piece holds the data of dump id \(found), not \(dumpID)")
            }
        }
        var rows = ByteBufferAllocator().buffer(capacity: input.readableBytes)
        var endsBlock = false
        while input.readableBytes > 0 {
            let length = try int()
            guard length >= 0 else { throw .unreadable("a negative chunk length") }
            if length == 0 {
                guard input.readableBytes == 0 else { throw .unreadable("bytes after the end of its data block") }
                endsBlock = true
                break
            }
            guard let chunk = input.readSlice(length: length) else {
                throw .unreadable("the piece ends inside a row")
            }
            if Self.endMarkers.contains(where: { chunk.readableBytesView.elementsEqual($0) }) { continue }
            rows.writeImmutableBuffer(chunk)
        }
        return (rows, endsBlock)
    }
}
