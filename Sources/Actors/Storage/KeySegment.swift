/// The reversible encoding of a database or dump config name into one segment of a dump key.
///
/// ASCII letters, digits, `_` and `-` stand for themselves; every other byte of the name's UTF-8
/// becomes `%XX` (upper-case hex), as in a URL. So every name has one segment, no two names share
/// one, and the segment is safe as a file name and an S3 key part: it is never empty, `.` or `..`,
/// never starts with `.` (pgclone's temporary files do), and holds no `/`. A PostgreSQL name (at
/// most 63 bytes) encodes to at most 189 characters.
///
/// Names made only of those characters are their own segment, as in keys written before the
/// encoding: such a segment may also be where an earlier release put a name it sanitised
/// (`rel.col` → `rel_col`), which ``DumpKey/namesDatabase`` accounts for.
package enum KeySegment {
    package static func encode(_ name: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var result: [UInt8] = []
        for byte in name.utf8 {
            if isLiteral(byte) {
                result.append(byte)
            } else {
                result += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// The name `segment` encodes; `nil` unless it is exactly what ``encode(_:)`` makes of some
    /// non-empty name (so a name has one segment, not several spellings).
    package static func decode(_ segment: some StringProtocol) -> String? {
        let bytes = Array(segment.utf8)
        guard !bytes.isEmpty else { return nil }
        var result: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if isLiteral(byte) {
                result.append(byte)
                index += 1
                continue
            }
            guard byte == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
            else { return nil }
            let decoded = high << 4 | low
            guard !isLiteral(decoded) else { return nil }
            result.append(decoded)
            index += 3
        }
        guard let name = String(validating: result, as: UTF8.self), !name.isEmpty else { return nil }
        return name
    }

    /// Whether `segment` is made only of characters that stand for themselves: it is a name that
    /// an earlier release's sanitising (other characters → `_`) could also have produced.
    package static func isLiteral(_ segment: some StringProtocol) -> Bool {
        segment.utf8.allSatisfy(isLiteral)
    }

    /// What releases before the encoding wrote for `name`: other characters became `_`.
    package static func sanitized(_ name: String) -> String {
        let sanitized = String(name.map { $0.isASCII && $0.utf8.allSatisfy(isLiteral) ? $0 : "_" })
        return sanitized.isEmpty ? "_" : sanitized
    }

    private static func isLiteral(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }

    /// Upper-case hex digits only: `%2e` is not a spelling of `.`.
    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
