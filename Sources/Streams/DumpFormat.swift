/// Magic numbers of the stored object's possible formats.
package enum ZstdFrame {
    /// A zstd frame: `0xFD2FB528`, little-endian.
    static let frameMagic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]
    /// The skippable frame pgclone writes its metadata in: `0x184D2A50`, little-endian.
    static let skippableMagicBytes: [UInt8] = [0x50, 0x2A, 0x4D, 0x18]
    /// A pg_dump custom-format archive (`pg_dump -Fc`, django-pgclone).
    static let archiveMagic: [UInt8] = Array("PGDMP".utf8)

    static func isSkippableMagic(_ bytes: some Collection<UInt8>) -> Bool {
        let prefix = Array(bytes.prefix(4))
        return prefix.count == 4 && prefix[0] & 0xF0 == 0x50 && prefix[1] == 0x2A && prefix[2] == 0x4D
            && prefix[3] == 0x18
    }
}

/// What the first bytes of a stored object say it is.
package enum DumpFormat: Sendable, Equatable {
    /// A zstd stream (pgclone's own format, or any zstd-compressed custom-format archive).
    case zstd
    /// A custom-format archive, uncompressed by zstd: passed to pg_restore unchanged.
    case archive
    /// Something pg_restore cannot read; the string says what it looks like.
    case unrecognized(String)
    /// Not enough bytes to tell yet.
    case needMoreBytes

    /// Bytes needed to describe anything `sniff` knows (a tar header's magic ends at 262).
    static let describeLength = 262

    /// Classifies an object from its first bytes. `atEnd` says no more bytes will come.
    package static func sniff(_ head: [UInt8], atEnd: Bool) -> DumpFormat {
        if head.starts(with: ZstdFrame.frameMagic) || ZstdFrame.isSkippableMagic(head) { return .zstd }
        if head.starts(with: ZstdFrame.archiveMagic) { return .archive }
        if head.count < 5 && !atEnd {
            // Could still become one of the above.
            let candidates = [ZstdFrame.frameMagic, ZstdFrame.archiveMagic]
            if candidates.contains(where: { $0.starts(with: head) }) || (head.count < 4 && isSkippablePrefix(head)) {
                return .needMoreBytes
            }
        }
        if head.count < describeLength && !atEnd { return .needMoreBytes }
        return .unrecognized(describe(head))
    }

    private static func isSkippablePrefix(_ head: [UInt8]) -> Bool {
        let pattern: [(UInt8) -> Bool] = [{ $0 & 0xF0 == 0x50 }, { $0 == 0x2A }, { $0 == 0x4D }]
        return zip(head, pattern).allSatisfy { byte, matches in matches(byte) }
    }

    /// A short description of data that is not a dump, for the error line.
    static func describe(_ head: [UInt8]) -> String {
        if head.isEmpty { return "it is empty" }
        let known: [([UInt8], String)] = [
            ([0x1F, 0x8B], "a gzip file"),
            ([0x42, 0x5A, 0x68], "a bzip2 file"),
            ([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00], "an xz file"),
            ([0x04, 0x22, 0x4D, 0x18], "an lz4 file"),
            ([0x50, 0x4B, 0x03, 0x04], "a zip archive"),
        ]
        for (magic, name) in known where head.starts(with: magic) { return "it looks like \(name)" }
        if head.count >= 262, Array(head[257..<262]) == Array("ustar".utf8) {
            return "it looks like a tar archive (pg_dump -Ft); pgclone restores custom-format archives (pg_dump -Fc)"
        }
        let text = String(decoding: head.prefix(64), as: UTF8.self)
        let isText = head.prefix(64).allSatisfy {
            $0 == 0x09 || $0 == 0x0A || $0 == 0x0D || (0x20..<0x7F).contains($0) || $0 >= 0x80
        }
        if isText {
            let firstLine = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            if firstLine.hasPrefix("--") || firstLine.uppercased().hasPrefix("SET ")
                || firstLine.uppercased().hasPrefix("CREATE ")
            {
                return "it looks like a plain-SQL dump (pg_dump -Fp); load it with psql instead"
            }
            return "it is text beginning \"\(firstLine.prefix(40))\""
        }
        let hex = head.prefix(8).map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }
        return "it begins with bytes \(hex.joined(separator: " "))"
    }
}
