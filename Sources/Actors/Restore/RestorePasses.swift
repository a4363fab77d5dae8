/// pg_restore `-j`'s parallel run split in two: the archive's ACL entries (an object's privileges,
/// default privileges) and what pg_restore restores after them (materialized views' data, event
/// triggers) are left to a second, serial pg_restore, in pg_restore's own order
/// (`_tocEntryRestorePass` in `pg_backup_archiver.c`).
///
/// pg_restore's parallel workers share its stderr and write a message's prefix and text apart, so
/// their errors interleave; an ACL entry's statements must be read whole from its error to be run
/// again one by one (``PrivilegeRestore``), which only a serial run guarantees.
package enum RestorePasses {
    /// The `pg_restore -L` lists of the two runs, made from `pg_restore -l`'s `listing`: every
    /// entry but the last pass's, and the last pass's alone; `nil` if there are none for the last.
    package static func split(listing: String) -> (parallel: String, serial: String)? {
        var parallel: [Substring] = []
        var serial: [Substring] = []
        var any = false
        for line in listing.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(";") || line.isEmpty {
                continue
            }
            if isLastPass(line) {
                any = true
                serial.append(line)
                parallel.append(";" + line)
            } else {
                parallel.append(line)
                serial.append(";" + line)
            }
        }
        guard any else { return nil }
        return (parallel.joined(separator: "\n") + "\n", serial.joined(separator: "\n") + "\n")
    }

    /// The owners `listing` names: each entry's last field, if any (a name with a space in it
    /// comes out cut, and so counts as a role that does not exist).
    package static func owners(listing: String) -> Set<String> {
        var owners: Set<String> = []
        for line in listing.split(separator: "\n") where !line.hasPrefix(";") {
            // `%d; %u %u %s %s %s %s`: an entry without an owner (large objects' data) ends in a space.
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            if fields.count > 4, let owner = fields.last, !owner.isEmpty { owners.insert(String(owner)) }
        }
        return owners
    }

    /// `3350; 0 0 ACL - TABLE t app`: the entry's description follows its dump ID and two OIDs.
    static func isLastPass(_ line: Substring) -> Bool {
        let fields = line.split(separator: " ", maxSplits: 3)
        guard fields.count == 4, fields[0].hasSuffix(";") else { return false }
        let entry = fields[3]
        return [
            "ACL ", "DEFAULT ACL ", "ACL LANGUAGE ", "EVENT TRIGGER ", "MATERIALIZED VIEW DATA ",
            "COMMENT - EVENT TRIGGER ",
        ]
        .contains { entry.hasPrefix($0) }
    }
}
