/// A number of bytes, as used for buffer capacities and memory budgets.
///
/// Parses the sizes users write on command lines and in config files: `65536`, `64MiB`, `64M`,
/// `512KiB`, `1GiB` (binary units; `K`, `M`, `G` mean the same as `KiB`, `MiB`, `GiB`, as in
/// PostgreSQL's own settings).
package struct ByteCount: Hashable, Sendable, Comparable, CustomStringConvertible {
    package var bytes: Int

    package init(bytes: Int) {
        self.bytes = bytes
    }

    package static func bytes(_ count: Int) -> ByteCount { ByteCount(bytes: count) }
    package static func kibibytes(_ count: Int) -> ByteCount { ByteCount(bytes: count << 10) }
    package static func mebibytes(_ count: Int) -> ByteCount { ByteCount(bytes: count << 20) }

    package static func < (lhs: ByteCount, rhs: ByteCount) -> Bool { lhs.bytes < rhs.bytes }

    /// `64 MiB`, `1.5 GiB`, `512 KiB` or `100 B`.
    package var description: String {
        let units = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        for (size, name) in units where bytes >= size {
            if bytes % size == 0 { return "\(bytes / size) \(name)" }
            let tenths = (bytes * 10 + size / 2) / size
            return "\(tenths / 10).\(tenths % 10) \(name)"
        }
        return "\(bytes) B"
    }

    /// Parses `65536`, `64MiB`, `64 MB`, `64M`, `1GiB`; `nil` for anything else.
    package init?(parsing text: String) {
        let trimmed = text.trimmingWhitespace()
        guard let firstNonDigit = trimmed.firstIndex(where: { !$0.isASCII || !$0.isNumber }) else {
            guard let value = Int(trimmed) else { return nil }
            self.bytes = value
            return
        }
        guard let number = Int(trimmed[..<firstNonDigit]) else { return nil }
        let unit = trimmed[firstNonDigit...].trimmingWhitespace().lowercased()
        let shift: Int
        switch unit {
        case "b": shift = 0
        case "k", "kb", "kib": shift = 10
        case "m", "mb", "mib": shift = 20
        case "g", "gb", "gib": shift = 30
        default: return nil
        }
        guard number <= (Int.max >> shift) else { return nil }
        self.bytes = number << shift
    }
}
