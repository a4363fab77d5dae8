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

    /// The rows in `piece`, moved together within its own memory (no second buffer).
    /// - Parameters:
    ///   - startsBlock: whether the piece starts its data block (with the block's header).
    ///   - dumpID: the table data entry the block must belong to.
    ///   - intSize: the archive's integer size.
    /// - Returns: the rows, and whether the piece ended its block.
    /// - Throws: ``ArchiveFormatError`` if the piece is not such a run of chunks.
    package static func rows(
        of piece: consuming ByteBuffer,
        startsBlock: Bool,
        dumpID: Int,
        intSize: Int
    ) throws(ArchiveFormatError) -> (rows: ByteBuffer, endsBlock: Bool) {
        let (length, endsBlock) = try piece.withUnsafeMutableReadableBytes {
            bytes throws(ArchiveFormatError) -> (Int, Bool) in
            var read = 0
            func int() throws(ArchiveFormatError) -> Int {
                guard read + 1 + intSize <= bytes.count else { throw .unreadable("the piece ends inside a length") }
                var magnitude = 0
                for offset in (read + 1...read + intSize).reversed() { magnitude = magnitude << 8 | Int(bytes[offset]) }
                defer { read += 1 + intSize }
                return bytes[read] == 0 ? magnitude : -magnitude
            }
            if startsBlock {
                guard bytes.count > 0, bytes[0] == ArchiveScanner.blockData else {
                    throw .unreadable("the piece does not start a data block")
                }
                read = 1
                let found = try int()
                guard found == dumpID else {
                    throw .unreadable("the piece holds the data of dump id \(found), not \(dumpID)")
                }
            }
            var written = 0
            while read < bytes.count {
                let length = try int()
                guard length >= 0 else { throw .unreadable("a negative chunk length") }
                if length == 0 {
                    guard read == bytes.count else { throw .unreadable("bytes after the end of its data block") }
                    return (written, true)
                }
                guard read + length <= bytes.count else { throw .unreadable("the piece ends inside a row") }
                let chunk = UnsafeRawBufferPointer(rebasing: bytes[read..<read + length])
                if !Self.endMarkers.contains(where: { chunk.elementsEqual($0) }) {
                    // Rows move towards the start: what they pass over (lengths) is already read.
                    bytes.baseAddress!.advanced(by: written).copyMemory(from: chunk.baseAddress!, byteCount: length)
                    written += length
                }
                read += length
            }
            return (written, false)
        }
        piece.moveWriterIndex(to: piece.readerIndex + length)
        return (piece, endsBlock)
    }
}
