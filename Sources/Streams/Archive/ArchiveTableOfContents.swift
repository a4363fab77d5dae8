package import NIOCore

/// The header and table of contents of a custom-format archive, as far as pgclone needs them: the
/// archive version, the integer size, and each entry's dump id, description, tag, section and
/// whether it has data (and its `COPY` statement).
package struct ArchiveTableOfContents: Sendable, Hashable {
    /// 1.14 to 1.16 (pg_dump 12 to 18): the archive versions pgclone reads, by minor number.
    package static let readableMinorVersions = 14...16

    /// The archive version's minor number (the major is 1).
    package var minorVersion: Int
    package var intSize: Int
    package var entries: [Entry]
    /// Bytes from the start of the archive to the end of the table of contents.
    package var length: Int

    package struct Entry: Sendable, Hashable {
        package var dumpID: Int
        /// pg_dump's `desc`: `TABLE DATA`, `BLOBS`, `SEQUENCE SET`, `INDEX`…
        package var description: String
        package var tag: String
        package var namespace: String
        /// pg_dump's sections: 1 none, 2 pre-data, 3 data, 4 post-data.
        package var section: Int
        /// Whether a data block belongs to it (`hadDumper`).
        package var hasData: Bool
        /// `COPY schema.table (columns) FROM stdin;` for table data.
        package var copyStatement: String?
        /// The statement of a session setup entry (``setupDescriptions``: `SET client_encoding …`);
        /// `nil` for the others, whose definitions pgclone leaves to pg_restore.
        package var definition: String?
        /// Table data's names and `COPY` statement as the archive has them, in the database's
        /// encoding (``tag``, ``namespace`` and ``copyStatement`` are read as UTF-8, for messages).
        package var raw: RawNames?
        /// The dump ids it depends on: for table data and an index, its table's.
        package var dependencies: [Int] = []
        /// An index (or a constraint's) that wants its table's rows in their dumped order: a BRIN
        /// index, whose block ranges summarise neighbouring rows, or the one the table is
        /// clustered on (pg_dump adds `ALTER TABLE … CLUSTER ON` to its definition).
        package var wantsRowOrder = false
    }

    /// Bytes of the archive, in the source database's encoding, which need not be UTF-8.
    package struct RawNames: Sendable, Hashable {
        package var namespace: [UInt8]
        package var tag: [UInt8]
        package var copyStatement: [UInt8]?
    }

    /// The entries whose statements pg_restore runs at the start of every session it opens
    /// (`processEncodingEntry`, `processStdStringsEntry`, `processSearchPathEntry`).
    package static let setupDescriptions: Set<String> = ["ENCODING", "STDSTRINGS", "SEARCHPATH"]

    /// Reads a whole header and table of contents (what an ``ArchiveIndex``'s first frame holds).
    /// - Throws: ``ArchiveFormatError`` for bytes that end early or are not one pgclone reads.
    package init(bytes: [UInt8]) throws(ArchiveFormatError) {
        var reader = ArchiveFieldReader(bytes)
        try self.init(parsing: &reader)
    }

    /// Reads a header and table of contents (what an ``ArchiveIndex``'s first frame holds) as its
    /// bytes come, entry by entry, giving each to a closure in the archive's order and keeping
    /// none: a copy of the bytes and every entry at once took tens of MB for 100,000 large objects.
    package struct EntryReader {
        private var reader = ArchiveTableOfContentsReader()

        package init() {}

        /// Reads on with `chunk`, the next bytes; pg_dump's integer size once the table of
        /// contents is whole (bytes after it are ignored), else `nil`.
        /// - Throws: ``ArchiveFormatError`` for bytes that are not a table of contents pgclone reads.
        package mutating func read(_ chunk: ByteBuffer, _ body: (Entry) -> Void) throws -> Int? {
            try chunk.withUnsafeReadableBytes { try reader.read($0, each: body) }?.0.intSize
        }
    }

    /// pg_dump's `teSection` values.
    package static let noSection = 1
    package static let preData = 2
    package static let data = 3
    package static let postData = 4

    /// The header's fields that reading the entries needs.
    struct Header: Sendable, Hashable {
        var minorVersion: Int
        var intSize: Int
        var offsetSize: Int
        /// The number of entries.
        var count: Int
    }

    private init(parsing reader: inout ArchiveFieldReader) throws(ArchiveFormatError) {
        let header = try Self.readHeader(&reader)
        var entries: [Entry] = []
        entries.reserveCapacity(min(header.count, 1 << 20))
        for _ in 0..<header.count { entries.append(try Self.readEntry(&reader, header)) }
        self.init(header: header, entries: entries, length: reader.position)
    }

    init(header: Header, entries: [Entry], length: Int) {
        minorVersion = header.minorVersion
        intSize = header.intSize
        self.entries = entries
        self.length = length
    }

    /// Reads the archive's header, up to the number of entries; sets `reader`'s integer size.
    static func readHeader(_ reader: inout ArchiveFieldReader) throws(ArchiveFormatError) -> Header {
        guard try reader.bytes(5) == Array("PGDMP".utf8) else { throw .unreadable("not a custom-format archive") }
        let (major, minor) = (Int(try reader.byte()), Int(try reader.byte()))
        _ = try reader.byte()  // revision
        guard major == 1, Self.readableMinorVersions.contains(minor) else {
            throw .unreadable("archive version \(major).\(minor) is not one pgclone reads (1.14 to 1.16)")
        }
        let intSize = Int(try reader.byte())
        reader.intSize = intSize
        let offsetSize = Int(try reader.byte())
        guard (1...8).contains(intSize), (1...8).contains(offsetSize) else {
            throw .unreadable("integer sizes \(intSize) and \(offsetSize)")
        }
        guard try reader.byte() == 1 else { throw .unreadable("not a custom-format archive") }
        // 1.15 (pg_dump 16) names the compression algorithm; 1.14 gives a zlib level.
        let compression = minor >= 15 ? Int(try reader.byte()) : try reader.int()
        guard compression == 0 else { throw .unreadable("compressed data (pgclone dumps with -Z0)") }
        for _ in 0..<7 { _ = try reader.int() }  // the creation time
        for _ in 0..<3 { _ = try reader.string() }  // database, server and pg_dump versions
        let count = try reader.int()
        guard count >= 0 else { throw .unreadable("a negative entry count") }
        return Header(minorVersion: minor, intSize: intSize, offsetSize: offsetSize, count: count)
    }

    /// Reads one entry of the table of contents.
    static func readEntry(_ reader: inout ArchiveFieldReader, _ header: Header) throws(ArchiveFormatError) -> Entry {
        let dumpID = try reader.int()
        let hasData = try reader.int() != 0
        _ = try reader.string()  // table OID
        _ = try reader.string()  // OID
        let tagBytes = try reader.rawString() ?? []
        let description = try reader.string() ?? ""
        let section = try reader.int()
        let definition = try reader.string()
        _ = try reader.string()  // DROP statement
        let copyStatement = try reader.rawString()
        let namespaceBytes = try reader.rawString() ?? []
        _ = try reader.string()  // tablespace
        _ = try reader.string()  // table access method (1.14)
        if header.minorVersion >= 16 { _ = try reader.int() }  // relkind
        _ = try reader.string()  // owner
        _ = try reader.string()  // "false": WITH OIDS
        var dependencies: [Int] = []
        while let dependency = try reader.string() {  // up to an empty one
            if let id = Int(dependency) { dependencies.append(id) }
        }
        // Custom format: whether and where the entry's data is (never "where" on a pipe).
        let dataState = try reader.byte()
        _ = try reader.bytes(header.offsetSize)
        guard (1...3).contains(dataState) else { throw .unreadable("a data state \(dataState)") }
        let isTableData = description == "TABLE DATA"
        return Entry(
            dumpID: dumpID,
            description: description,
            tag: String(decoding: tagBytes, as: UTF8.self),
            namespace: String(decoding: namespaceBytes, as: UTF8.self),
            section: section,
            hasData: hasData,
            copyStatement: copyStatement.map { String(decoding: $0, as: UTF8.self) },
            definition: Self.setupDescriptions.contains(description) ? definition : nil,
            raw: isTableData
                ? RawNames(namespace: namespaceBytes, tag: tagBytes, copyStatement: copyStatement) : nil,
            dependencies: dependencies,
            wantsRowOrder: ["INDEX", "CONSTRAINT"].contains(description)
                && (definition.map { $0.contains(" USING brin (") || $0.contains(" CLUSTER ON ") } ?? false)
        )
    }
}

/// The table of contents as the archive scanner (``ArchiveScanner``) reads it while the archive
/// streams past: what it needs of it, read on from the last whole entry as bytes come, so that the
/// whole costs one pass whatever the chunks (reading it again from the start at every chunk took
/// 36 s of CPU for the 19 MB table of contents of 20,000 tables, against pg_dump's 0.6 s), and
/// holding no more than the unread bytes and the dump ids with data (the entries of 100,000 large
/// objects took tens of MB).
struct ArchiveTableOfContentsReader {
    /// What the scanner needs of a table of contents read whole.
    struct Summary: Sendable, Hashable {
        var intSize: Int
        /// Bytes from the start of the archive to the end of the table of contents.
        var length: Int
        /// The entries that have a data block.
        var dataDumpIDs: Set<Int>
    }

    private var header: ArchiveTableOfContents.Header?
    private var entriesRead = 0
    private var dataDumpIDs: Set<Int> = []
    /// Bytes not read yet, from the end of the last whole entry (or the archive's start).
    private var unread: [UInt8] = []
    /// Archive bytes before `unread`.
    private var consumed = 0

    /// Reads on with `bytes`, the archive's next bytes; once the table of contents is whole, what
    /// the scanner needs of it and the bytes of `bytes` after it, else `nil`.
    /// - Throws: ``ArchiveFormatError`` for an archive pgclone does not read, or one that
    ///   contradicts itself.
    mutating func read(
        _ bytes: UnsafeRawBufferPointer,
        each: (ArchiveTableOfContents.Entry) -> Void = { _ in }
    ) throws(ArchiveFormatError) -> (Summary, rest: [UInt8])? {
        unread.append(contentsOf: bytes)
        var reader = ArchiveFieldReader(unread)
        reader.intSize = header?.intSize ?? 4
        // Where the last whole entry (or the header) ended in `unread`.
        var position = 0
        do {
            if header == nil {
                header = try ArchiveTableOfContents.readHeader(&reader)
                position = reader.position
            }
            while entriesRead < header!.count {
                let entry = try ArchiveTableOfContents.readEntry(&reader, header!)
                if entry.hasData { dataDumpIDs.insert(entry.dumpID) }
                each(entry)
                entriesRead += 1
                position = reader.position
            }
        } catch .needMoreBytes {
            unread.removeFirst(position)
            consumed += position
            return nil
        }
        let summary = Summary(intSize: header!.intSize, length: consumed + position, dataDumpIDs: dataDumpIDs)
        let rest = Array(unread[position...])
        unread = []
        return (summary, rest)
    }
}

/// Why an archive cannot be indexed.
package enum ArchiveFormatError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The bytes end before the field does.
    case needMoreBytes
    case unreadable(String)

    package var description: String {
        switch self {
        case .needMoreBytes: "the archive ends early"
        case .unreadable(let reason): reason
        }
    }
}

/// pg_dump's fields at a position in a byte array: bytes, integers (a sign byte and `intSize`
/// bytes, least significant first) and strings (a length, -1 for none, then the bytes).
struct ArchiveFieldReader {
    private let bytes: [UInt8]
    private(set) var position = 0
    var intSize = 4

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func byte() throws(ArchiveFormatError) -> UInt8 {
        guard position < bytes.count else { throw .needMoreBytes }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func bytes(_ count: Int) throws(ArchiveFormatError) -> [UInt8] {
        guard count >= 0 else { throw .unreadable("a negative length") }
        guard position + count <= bytes.count else { throw .needMoreBytes }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    mutating func int() throws(ArchiveFormatError) -> Int {
        let sign = try byte()
        let magnitude = try bytes(intSize).reversed().reduce(0) { $0 << 8 | Int($1) }
        return sign == 0 ? magnitude : -magnitude
    }

    mutating func string() throws(ArchiveFormatError) -> String? {
        try rawString().map { String(decoding: $0, as: UTF8.self) }
    }

    /// A string's bytes, as they are (the database's encoding).
    mutating func rawString() throws(ArchiveFormatError) -> [UInt8]? {
        let length = try int()
        guard length >= 0 else { return nil }
        guard length <= 1 << 30 else { throw .unreadable("a string of \(length) bytes") }
        return try bytes(length)
    }
}
