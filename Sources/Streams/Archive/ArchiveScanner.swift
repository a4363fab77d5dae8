/// Reads pg_dump's custom-format archive as it streams past — its header, its table of contents,
/// then its data blocks (a block type, the entry's dump id, length-prefixed chunks) — and says where
/// it can be cut into pieces that are read on their own: at the start of every data block, inside
/// a table's data at a row boundary once `pieceSize` bytes have passed since the last cut, and
/// inside large objects' data at any field once as many have (those pieces are only read in order).
///
/// The layout is pg_dump's (`src/bin/pg_dump/pg_backup_archiver.c`, `pg_backup_custom.c`):
/// archive versions 1.14 to 1.16 (pg_dump 12 to 18), uncompressed (`-Z0`), as pg_dump writes it to
/// a pipe (no data offsets). Anything else, or anything inconsistent, makes the scanner give up
/// (``failure``): it then reports no more cuts, and no index may be made from what it saw.
package struct ArchiveScanner: Sendable {
    /// A place where the archive may be cut.
    package struct Cut: Sendable, Hashable {
        /// Bytes from the start of the archive.
        package var offset: Int
        /// The dump id of the data block it is in (of the table of contents' entry).
        package var dumpID: Int
        /// A block's start, or a piece of a table's data that starts at a row.
        package var startsBlock: Bool

        package init(offset: Int, dumpID: Int, startsBlock: Bool) {
            self.offset = offset
            self.dumpID = dumpID
            self.startsBlock = startsBlock
        }
    }

    /// Bytes of table data after which the next row starts a new piece.
    package let pieceSize: Int
    /// Bytes from the start of the archive to the end of the table of contents, once read whole.
    package private(set) var tableOfContentsLength: Int?
    /// pg_dump's integer size, from the archive's header.
    private var intSize = 4
    /// Why the scanner gave up, if it did.
    package private(set) var failure: String?
    /// Every cut so far, in order, with the block each is in.
    package private(set) var cuts: [Cut] = []
    /// Archive bytes scanned so far.
    package private(set) var offset = 0
    /// Whether the archive ended where a block may end (call ``finish()`` first).
    package private(set) var isComplete = false

    private enum State: Sendable {
        /// Gathering the header and table of contents.
        case head
        /// Expecting a block type byte (or the end of the archive).
        case blockType
        /// Reading the block's dump id.
        case blockID(type: UInt8)
        /// Expecting a chunk length (for large objects: an OID first, `readingOID`).
        case chunkLength(readingOID: Bool)
        /// Inside a chunk's bytes.
        case chunkBytes(remaining: Int)
    }

    private var state = State.head
    private var headReader = ArchiveTableOfContentsReader()
    /// A fixed-size field split between two calls.
    private var pending: [UInt8] = []
    private var block: (type: UInt8, dumpID: Int)?
    /// The entries that have data: looked up at every block, so a set, not the entry list.
    private var dataDumpIDs: Set<Int> = []
    private var sinceCut = 0
    /// Whether the last chunk of table data ended a row.
    private var atRowEnd = true

    package static let blockData: UInt8 = 1
    package static let blockLargeObjects: UInt8 = 3

    package init(pieceSize: Int = 4 << 20) {
        self.pieceSize = pieceSize
    }

    /// Scans the archive's next bytes; returns the offsets of the cuts that fall inside them (or at
    /// their start), in order: the bytes from each on go into a new piece. ``cuts`` says which
    /// block each is in once its dump id has been read.
    package mutating func scan(_ bytes: UnsafeRawBufferPointer) -> [Int] {
        var found: [Int] = []
        var index = 0
        while index < bytes.count && failure == nil {
            switch state {
            case .head:
                let chunk = UnsafeRawBufferPointer(rebasing: bytes[index...])
                index = bytes.count
                offset += chunk.count
                readHead(chunk, &found)
            case .blockType:
                let type = bytes[index]
                guard type == Self.blockData || type == Self.blockLargeObjects else {
                    fail("an unknown data block type \(type) at byte \(offset)")
                    break
                }
                found.append(offset)
                cuts.append(Cut(offset: offset, dumpID: 0, startsBlock: true))
                index += 1
                offset += 1
                state = .blockID(type: type)
            case .blockID(let type):
                guard let dumpID = readInt(bytes, &index) else { break }
                guard dataDumpIDs.contains(dumpID) else {
                    fail("a data block for dump id \(dumpID), which the table of contents gives no data")
                    break
                }
                block = (type, dumpID)
                cuts[cuts.count - 1].dumpID = dumpID
                sinceCut = 0
                atRowEnd = true
                state = .chunkLength(readingOID: type == Self.blockLargeObjects)
            case .chunkLength(let readingOID):
                // A piece of a table's data starts at a chunk that starts a row (pg_dump writes a
                // row per chunk); decided at the chunk's first byte, which may end the block.
                // Large objects' pieces are only ever read in order (by pg_restore): any field will do.
                if pending.isEmpty, let block, sinceCut >= pieceSize,
                    block.type == Self.blockLargeObjects || (!readingOID && atRowEnd)
                {
                    found.append(offset)
                    cuts.append(Cut(offset: offset, dumpID: block.dumpID, startsBlock: false))
                    sinceCut = 0
                }
                let start = offset
                guard let value = readInt(bytes, &index), let block else { break }
                if readingOID {
                    // Large objects: OID, chunks, 0; an OID of 0 ends the block.
                    state = value == 0 ? .blockType : .chunkLength(readingOID: false)
                    if value == 0 { self.block = nil }
                    break
                }
                guard value >= 0 else {
                    fail("a negative chunk length near byte \(start)")
                    break
                }
                if value == 0 {
                    state = block.type == Self.blockLargeObjects ? .chunkLength(readingOID: true) : .blockType
                    if block.type == Self.blockData { self.block = nil }
                    break
                }
                state = .chunkBytes(remaining: value)
            case .chunkBytes(let remaining):
                let take = min(remaining, bytes.count - index)
                index += take
                offset += take
                sinceCut += take
                if take == remaining {
                    atRowEnd = bytes[index - 1] == UInt8(ascii: "\n")
                    state = .chunkLength(readingOID: false)
                } else {
                    state = .chunkBytes(remaining: remaining - take)
                }
            }
        }
        return failure == nil ? found : []
    }

    /// Says the archive has ended; ``isComplete`` tells whether it ended where it may.
    package mutating func finish() {
        guard failure == nil else { return }
        switch state {
        case .blockType:
            isComplete = tableOfContentsLength != nil
        case .head:
            fail("the archive ends inside its table of contents")
        default:
            fail("the archive ends inside a data block")
        }
    }

    // MARK: Header and table of contents

    private mutating func readHead(_ chunk: UnsafeRawBufferPointer, _ found: inout [Int]) {
        do {
            guard let (contents, rest) = try headReader.read(chunk) else { return }
            headReader = ArchiveTableOfContentsReader()
            tableOfContentsLength = contents.length
            intSize = contents.intSize
            dataDumpIDs = contents.dataDumpIDs
            // What follows the table of contents is data blocks: scanned from here.
            offset = contents.length
            state = .blockType
            if !rest.isEmpty {
                found += rest.withUnsafeBytes { scan($0) }
            }
        } catch {
            fail(error.description)
        }
    }

    // MARK: Fields

    /// Reads an integer as pg_dump writes it (a sign byte, then `intSize` bytes, least significant
    /// first), which may straddle two calls; `nil` if the bytes run out first.
    private mutating func readInt(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) -> Int? {
        let size = 1 + intSize
        let take = min(size - pending.count, bytes.count - index)
        pending.append(contentsOf: bytes[index..<index + take])
        index += take
        offset += take
        if block != nil { sinceCut += take }
        guard pending.count == size else { return nil }
        defer { pending.removeAll(keepingCapacity: true) }
        var value = 0
        for byte in pending[1...].reversed() { value = value << 8 | Int(byte) }
        return pending[0] == 0 ? value : -value
    }

    private mutating func fail(_ reason: String) {
        if failure == nil { failure = reason }
    }
}
