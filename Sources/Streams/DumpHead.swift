/// What the first bytes of a stored dump say about where it came from, read without restoring it:
/// pgclone's metadata frame, or the header of a plain custom-format archive (django-pgclone's and
/// `pg_dump -Fc`'s), which names the database pg_dump was connected to.
package struct DumpHead: Sendable, Equatable {
    /// pgclone's metadata, if the object starts with it.
    package var metadata: DumpMetadata?
    /// The database named in a plain archive's header.
    package var archiveDatabase: String?

    package init(metadata: DumpMetadata? = nil, archiveDatabase: String? = nil) {
        self.metadata = metadata
        self.archiveDatabase = archiveDatabase
    }

    /// The source database's name, if the dump says it.
    package var database: String? { metadata?.database ?? archiveDatabase }

    /// Bytes to read first; ``parse(_:)`` asks for more if a metadata frame is longer.
    package static let initialLength = 16 << 10

    package enum Parsed: Sendable, Equatable {
        case head(DumpHead)
        /// The first `count` bytes are needed (a metadata frame longer than what was read).
        case needsBytes(Int)
    }

    /// Parses the first bytes of an object (all of it, if it is shorter than what was asked).
    package static func parse(_ bytes: [UInt8]) -> Parsed {
        if bytes.starts(with: ZstdFrame.skippableMagicBytes), bytes.count >= 8 {
            let size = bytes[4..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
            guard size <= DumpDecoder.maximumMetadataSize else { return .head(DumpHead()) }
            guard bytes.count >= 8 + size else { return .needsBytes(8 + size) }
            return .head(DumpHead(metadata: DumpMetadata(skippableFramePayload: Array(bytes[8..<8 + size]))))
        }
        if bytes.starts(with: ZstdFrame.archiveMagic) {
            return .head(DumpHead(archiveDatabase: ArchiveHeader(bytes)?.database))
        }
        return .head(DumpHead())
    }
}

/// The start of a custom-format archive, as pg_dump's `WriteHead` writes it (archive versions 1.12
/// to 1.16, pg_dump 9.0 to 18): `PGDMP`, version bytes, integer and offset sizes, format, the
/// compression (a byte from 1.15, an integer before), the creation time as seven integers, then
/// strings: the database name, the server's and pg_dump's versions. An integer is a sign byte and
/// `intSize` bytes, least significant first; a string an integer length and that many bytes.
struct ArchiveHeader {
    var database: String?

    init?(_ bytes: [UInt8]) {
        var reader = Reader(bytes: bytes, offset: 5)
        guard let major = reader.byte(), let minor = reader.byte(), let revision = reader.byte(), major == 1,
            (12...16).contains(minor), let intSize = reader.byte(), (1...8).contains(intSize), reader.byte() != nil,
            reader.byte() != nil
        else { return nil }
        _ = revision
        reader.intSize = Int(intSize)
        if minor >= 15 {
            guard reader.byte() != nil else { return nil }
        } else {
            guard reader.int() != nil else { return nil }
        }
        for _ in 0..<7 {
            guard reader.int() != nil else { return nil }
        }
        guard let name = reader.string() else { return nil }
        database = name
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset: Int
        var intSize = 4

        mutating func byte() -> UInt8? {
            guard offset < bytes.count else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func int() -> Int? {
            guard let sign = byte(), offset + intSize <= bytes.count else { return nil }
            var value = 0
            for index in (0..<intSize).reversed() { value = value << 8 | Int(bytes[offset + index]) }
            offset += intSize
            return sign == 0 ? value : -value
        }

        mutating func string() -> String? {
            guard let length = int(), length >= 0, length <= 1024, offset + length <= bytes.count else { return nil }
            defer { offset += length }
            return String(validating: bytes[offset..<offset + length], as: UTF8.self)
        }
    }
}
