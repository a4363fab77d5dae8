package import Foundation

/// Retention for `pgclone prune`, per series (database and dump config), within pgclone's key
/// schema: what `--keep-last`, `--keep-daily` and `--keep-weekly` keep (their union, as restic's
/// `forget` does), and of the rest what is old enough to go (`--older-than`; everything, without
/// it). A series' newest dump is kept unless `--keep-last` is given (`--keep-last 0` deletes it
/// too): `--older-than 30d` alone would otherwise delete the last dump of a database whose dumps
/// stopped a month ago, when it is needed most.
package struct PrunePolicy: Sendable, Hashable {
    package var keepLast: Int?
    package var keepDaily: Int?
    package var keepWeekly: Int?
    package var olderThan: Duration?

    package init(keepLast: Int? = nil, keepDaily: Int? = nil, keepWeekly: Int? = nil, olderThan: Duration? = nil) {
        self.keepLast = keepLast
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
        self.olderThan = olderThan
    }

    package var isEmpty: Bool { keepLast == nil && keepDaily == nil && keepWeekly == nil && olderThan == nil }

    /// Splits one series' dumps into those kept and those to delete, newest first.
    package func apply(to dumps: [StoredDump], now: Date) -> (keep: [StoredDump], delete: [StoredDump]) {
        let sorted = dumps.sorted { $0.key > $1.key }
        var kept = Set<DumpKey>()
        let hasKeepRule = keepLast != nil || keepDaily != nil || keepWeekly != nil
        kept.formUnion(sorted.prefix(keepLast ?? 1).map(\.key))
        if let keepDaily { kept.formUnion(newestPerPeriod(sorted, periods: keepDaily, period: Self.day)) }
        if let keepWeekly { kept.formUnion(newestPerPeriod(sorted, periods: keepWeekly, period: Self.week)) }
        let cutoff = olderThan.map { now.addingTimeInterval(-Double($0.components.seconds)) }
        var keep: [StoredDump] = []
        var delete: [StoredDump] = []
        for dump in sorted {
            let old = cutoff.map { (dump.key.date ?? now) < $0 } ?? hasKeepRule
            if kept.contains(dump.key) || !old { keep.append(dump) } else { delete.append(dump) }
        }
        return (keep, delete)
    }

    /// The newest dump of each of the `periods` most recent periods that have one.
    private func newestPerPeriod(_ sorted: [StoredDump], periods: Int, period: (Date) -> String) -> [DumpKey] {
        var seen = Set<String>()
        var keys: [DumpKey] = []
        for dump in sorted {
            guard let date = dump.key.date, seen.count < periods || seen.contains(period(date)) else { continue }
            if seen.insert(period(date)).inserted { keys.append(dump.key) }
        }
        return keys
    }

    private static func day(_ date: Date) -> String {
        let parts = utc.dateComponents([.year, .month, .day], from: date)
        return "\(parts.year!)-\(parts.month!)-\(parts.day!)"
    }

    private static func week(_ date: Date) -> String {
        let parts = iso.dateComponents([.yearForWeekOfYear, .weekOfYear], from: date)
        return "\(parts.yearForWeekOfYear!)-W\(parts.weekOfYear!)"
    }

    private static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    private static let iso: Calendar = {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()
}

extension DumpKey {
    /// The creation time the key records.
    package var date: Date? {
        let digits = sortableTimestamp
        func number(_ offset: Int, _ length: Int) -> Int {
            let start = digits.index(digits.startIndex, offsetBy: offset)
            return Int(digits[start..<digits.index(start, offsetBy: length)]) ?? 0
        }
        var components = DateComponents()
        components.timeZone = TimeZone(identifier: "UTC")
        (components.year, components.month, components.day) = (number(0, 4), number(4, 2), number(6, 2))
        (components.hour, components.minute, components.second) = (number(8, 2), number(10, 2), number(12, 2))
        components.nanosecond = number(14, 6) * 1000
        return Calendar(identifier: .gregorian).date(from: components)
    }
}
