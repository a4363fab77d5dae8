package import FoundationEssentials
import Glibc

/// A dump's key, relative to the storage location, in one of the layouts pgclone reads.
///
/// pgclone writes `{database}/{timestamp}.{config}.dump`: the names encoded by ``KeySegment`` (so
/// no two databases or configs share a segment), the timestamp UTC in ISO 8601 basic format with
/// microseconds (`20261126T075200.123456Z`), fixed width so that lexical order is time order.
/// It also reads the layouts django-pgclone wrote:
/// - 1.x: `{database}/{YYYY_MM_DD_HH_MM_SS_ffffff}.{config}.dump`, the names as they were;
/// - 2.0 and later: `{instance}/{alias}/{config}/{YYYY-MM-DD-HH-MM-SS-ffffff}.dump`, where the
///   alias is a Django database alias (`default`), not the database's name.
package struct DumpKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    package enum Layout: String, Sendable, Hashable, Codable {
        case pgclone
        case djangoPGClone1 = "django-pgclone-1"
        case djangoPGClone2 = "django-pgclone-2"

        /// The tool that wrote keys of this layout, for messages.
        package var tool: String {
            self == .pgclone ? "pgclone" : self == .djangoPGClone1 ? "django-pgclone 1.x" : "django-pgclone 2+"
        }
    }

    /// The key as stored, relative to the storage location.
    package let path: String
    package let layout: Layout
    /// The database the key names: pgclone's decoded name, django-pgclone 1.x's name as written,
    /// django-pgclone 2+'s Django alias. See ``namesDatabase``.
    package let database: String
    /// The dump config the key names (django-pgclone 2+ writes `none` for a dump made without one).
    package let config: String
    /// The creation time, `yyyyMMddHHmmssSSSSSS` in UTC.
    package let sortableTimestamp: String

    /// Whether ``database`` is surely the name of the database dumped. Not for django-pgclone 2+
    /// keys (an alias), nor for a pgclone key whose database segment an earlier release's
    /// sanitising could have written for another name (`rel_col/` for `rel.col`): the dump itself
    /// says (``DumpCatalog`` reads it).
    package var namesDatabase: Bool {
        switch layout {
        case .pgclone: !(KeySegment.isLiteral(databaseSegment) && databaseSegment.contains("_"))
        case .djangoPGClone1: true
        case .djangoPGClone2: false
        }
    }

    /// The directory part of a pgclone or django-pgclone 1.x key.
    private var databaseSegment: Substring { path.prefix { $0 != "/" } }

    package var description: String { path }

    /// A key for a dump of `database` with dump config `config` made at `date`.
    package init(database: String, config: String, date: Date = Date()) {
        let timestamp = Self.timestamp(for: date)
        self.path = "\(KeySegment.encode(database))/\(timestamp).\(KeySegment.encode(config)).dump"
        self.layout = .pgclone
        self.database = database
        self.config = config
        self.sortableTimestamp = Self.sortable(pgcloneTimestamp: timestamp[...])!
    }

    /// Parses a key of any layout; `nil` if it has none of them.
    package init?(parsing key: String) {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }), let file = parts.last,
            file.hasSuffix(".dump")
        else {
            return nil
        }
        let stem = file.dropLast(".dump".count)
        switch parts.count {
        case 2:
            let pgcloneLength = "20261126T075200.123456Z".count
            let djangoLength = "2026_11_26_07_52_00_123456".count
            if let digits = Self.sortable(pgcloneTimestamp: stem.prefix(pgcloneLength)),
                stem.dropFirst(pgcloneLength).first == ".",
                let database = KeySegment.decode(parts[0]),
                let config = KeySegment.decode(stem.dropFirst(pgcloneLength + 1))
            {
                self.init(path: key, layout: .pgclone, database: database, config: config, sortableTimestamp: digits)
            } else if let digits = Self.sortable(stem.prefix(djangoLength), separator: "_"),
                stem.dropFirst(djangoLength).first == ".", stem.count > djangoLength + 1
            {
                self.init(
                    path: key,
                    layout: .djangoPGClone1,
                    database: String(parts[0]),
                    config: String(stem.dropFirst(djangoLength + 1)),
                    sortableTimestamp: digits
                )
            } else {
                return nil
            }
        case 4:
            guard parts.dropLast().allSatisfy(KeySegment.isLiteral), let digits = Self.sortable(stem, separator: "-")
            else {
                return nil
            }
            self.init(
                path: key,
                layout: .djangoPGClone2,
                database: String(parts[1]),
                config: String(parts[2]),
                sortableTimestamp: digits
            )
        default:
            return nil
        }
    }

    private init(path: String, layout: Layout, database: String, config: String, sortableTimestamp: String) {
        self.path = path
        self.layout = layout
        self.database = database
        self.config = config
        self.sortableTimestamp = sortableTimestamp
    }

    /// Older first: by time, then by key.
    package static func < (lhs: DumpKey, rhs: DumpKey) -> Bool {
        (lhs.sortableTimestamp, lhs.path) < (rhs.sortableTimestamp, rhs.path)
    }

    /// django-pgclone 2+'s instance (the host name, by default).
    package var instance: String? {
        layout == .djangoPGClone2 ? String(databaseSegment) : nil
    }

    /// The creation time the key records, as `2026-11-26T07:52:00.123456Z`.
    package var isoTimestamp: String {
        let digits = sortableTimestamp
        func part(_ offset: Int, _ length: Int) -> Substring {
            let start = digits.index(digits.startIndex, offsetBy: offset)
            return digits[start..<digits.index(start, offsetBy: length)]
        }
        return "\(part(0, 4))-\(part(4, 2))-\(part(6, 2))T\(part(8, 2)):\(part(10, 2)):\(part(12, 2)).\(part(14, 6))Z"
    }

    /// `20261126T075200.123456Z` → `20261126075200123456`.
    private static func sortable(pgcloneTimestamp text: Substring) -> String? {
        let characters = Array(text)
        guard characters.count == 23, characters[8] == "T", characters[15] == ".", characters[22] == "Z" else {
            return nil
        }
        let digits = characters[0..<8] + characters[9..<15] + characters[16..<22]
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return isTime(String(digits)) ? String(digits) : nil
    }

    /// Whether `yyyyMMddHHmmssSSSSSS` is a time that can be (month 1–12, day 1–31, hour 0–23,
    /// minute 0–59, second 0–60): `20261399T999999` is no time, and must not sort as the newest.
    private static func isTime(_ digits: String) -> Bool {
        let numbers = [(4, 2), (6, 2), (8, 2), (10, 2), (12, 2)].map { offset, length in
            Int(digits.dropFirst(offset).prefix(length)) ?? -1
        }
        return (1...12).contains(numbers[0]) && (1...31).contains(numbers[1]) && (0...23).contains(numbers[2])
            && (0...59).contains(numbers[3]) && (0...60).contains(numbers[4])
    }

    /// django-pgclone's `%Y?%m?%d?%H?%M?%S?%f`, `?` being `separator`; 1 to 6 digits of microseconds.
    private static func sortable(_ text: Substring, separator: Character) -> String? {
        let fields = text.split(separator: separator, omittingEmptySubsequences: false)
        let widths = [4, 2, 2, 2, 2, 2]
        guard fields.count == 7, zip(fields, widths).allSatisfy({ $0.count == $1 }), (1...6).contains(fields[6].count),
            fields.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } })
        else { return nil }
        let fraction = String(fields[6]) + String(repeating: "0", count: 6 - fields[6].count)
        let digits = fields.prefix(6).joined() + fraction
        return isTime(digits) ? digits : nil
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
