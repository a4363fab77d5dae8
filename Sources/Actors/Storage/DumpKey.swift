package import FoundationEssentials
import Glibc

/// A dump's key: `{database_name}/{timestamp}.{config_name}.dump`.
///
/// The timestamp is UTC in ISO 8601 basic format with microseconds (`20261126T075200.123456Z`):
/// fixed width, so lexical order is time order, and free of characters that need escaping in S3
/// keys or on any file system. Keys written by django-pgclone (`2020-06-01T12:00:00.123456`) are
/// read too. Database and config names are sanitised: characters outside `[A-Za-z0-9_-]` become `_`.
package struct DumpKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    package var database: String
    package var timestamp: String
    package var config: String

    package var description: String { "\(database)/\(timestamp).\(config).dump" }

    /// A key for a dump of `database` made now.
    package init(database: String, config: String, date: Date = Date()) {
        self.database = Self.sanitize(database)
        self.config = Self.sanitize(config)
        self.timestamp = Self.timestamp(for: date)
    }

    /// Parses a key; `nil` if it does not have the key format.
    package init?(parsing key: String) {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].allSatisfy(Self.isKeyCharacter),
            parts[1].hasSuffix(".dump")
        else { return nil }
        let name = parts[1].dropLast(".dump".count)
        guard let dot = name.lastIndex(of: ".") else { return nil }
        let config = name[name.index(after: dot)...]
        let timestamp = name[..<dot]
        guard !config.isEmpty, config.allSatisfy(Self.isKeyCharacter), Self.sortableTimestamp(timestamp) != nil else {
            return nil
        }
        self.database = String(parts[0])
        self.timestamp = String(timestamp)
        self.config = String(config)
    }

    /// Newest first: by time, then by name.
    package static func < (lhs: DumpKey, rhs: DumpKey) -> Bool {
        let left = sortableTimestamp(lhs.timestamp) ?? ""
        let right = sortableTimestamp(rhs.timestamp) ?? ""
        return (left, lhs.database, lhs.config) < (right, rhs.database, rhs.config)
    }

    /// The creation time the key records, as `2026-11-26T07:52:00.123456Z`.
    package var isoTimestamp: String {
        let digits = Self.sortableTimestamp(timestamp) ?? ""
        func part(_ offset: Int, _ length: Int) -> Substring {
            let start = digits.index(digits.startIndex, offsetBy: offset)
            return digits[start..<digits.index(start, offsetBy: length)]
        }
        return "\(part(0, 4))-\(part(4, 2))-\(part(6, 2))T\(part(8, 2)):\(part(10, 2)):\(part(12, 2)).\(part(14, 6))Z"
    }

    package static func sanitize(_ name: String) -> String {
        let sanitized = String(name.map { isKeyCharacter($0) ? $0 : "_" })
        return sanitized.isEmpty ? "_" : sanitized
    }

    private static func isKeyCharacter(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || character == "_" || character == "-")
    }

    /// `yyyyMMddHHmmssSSSSSS` from either timestamp format, or `nil` if `text` is neither.
    static func sortableTimestamp(_ text: some StringProtocol) -> String? {
        let characters = Array(text)
        let digits = characters.filter(\.isNumber)
        guard characters.allSatisfy({ $0.isNumber || "-:T.Z".contains($0) }), characters.first?.isNumber == true,
            digits.count >= 14, digits.count <= 20, characters.contains("T")
        else { return nil }
        return String(digits) + String(repeating: "0", count: 20 - digits.count)
    }

    static func timestamp(for date: Date) -> String {
        let microseconds = Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
        var seconds = time_t(microseconds / 1_000_000)
        var fields = tm()
        gmtime_r(&seconds, &fields)
        var text = [CChar](repeating: 0, count: 32)
        let length = strftime(&text, text.count, "%Y%m%dT%H%M%S", &fields)
        let fraction = String(microseconds % 1_000_000)
        let date = String(decoding: text.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return date + "." + String(repeating: "0", count: 6 - fraction.count) + fraction + "Z"
    }
}
