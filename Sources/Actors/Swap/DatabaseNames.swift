/// The databases the restore-and-swap protocol uses for target `D`.
package struct DatabaseNames: Sendable, Hashable {
    /// `D`, the database the application uses.
    package var target: String
    /// `D__temp`: restored into, then renamed to `D`.
    package var temporary: String { target + "__temp" }
    /// `D__swap`: the database the swap displaced (the old `D`, or with `--reversible` the old
    /// `D__previous`), dropped right after the swap.
    package var swapped: String { target + "__swap" }
    /// `D__snap`: the snapshot of `D__temp` taken before the hooks, renamed to `D__current` by the swap.
    package var snapshot: String { target + "__snap" }
    /// `D__previous` and `D__current`: the reversible restore's snapshots.
    package var previous: String { target + "__previous" }
    package var current: String { target + "__current" }

    /// Every name derived from `D`.
    package var derived: [String] { [temporary, swapped, snapshot, previous, current] }

    /// The suffixes of pgclone's own databases: a target, a copy or a source named with one of
    /// them would collide with another restore's databases.
    package static let reservedSuffixes = ["__temp", "__swap", "__snap", "__previous", "__current"]

    /// PostgreSQL's limit on identifiers (NAMEDATALEN - 1), in bytes.
    package static let maximumNameBytes = 63

    /// Checks that the name is one pgclone may restore into, and that every derived name fits
    /// PostgreSQL's 63-byte limit, before anything is done.
    /// - Throws: `.invalidConfiguration` for an empty name, one ending in a reserved suffix, or one
    ///   too long.
    package init(target: String) throws(PGCloneError) {
        self.target = target
        try Self.checkName(target, as: "restore into")
        let longest = derived.max { $0.utf8.count < $1.utf8.count }!
        guard longest.utf8.count <= Self.maximumNameBytes else {
            throw PGCloneError(
                .invalidConfiguration,
                """
                the database name \"\(target)\" is too long to restore into: \"\(longest)\" would exceed \
                PostgreSQL's \(Self.maximumNameBytes)-byte limit on names; use a name of at most \
                \(Self.maximumNameBytes - (longest.utf8.count - target.utf8.count)) bytes
                """
            )
        }
    }

    /// Refuses a name pgclone must not create or replace: empty, longer than PostgreSQL allows (it
    /// would silently truncate it), or ending in one of pgclone's own suffixes. `purpose` says
    /// what the name is for (`restore into`, `copy to`).
    package static func checkName(_ name: String, as purpose: String) throws(PGCloneError) {
        guard !name.isEmpty else {
            throw PGCloneError(.invalidConfiguration, "the database name to \(purpose) is empty")
        }
        guard name.utf8.count <= maximumNameBytes else {
            throw PGCloneError(
                .invalidConfiguration,
                """
                the database name \"\(name)\" is \(name.utf8.count) bytes long; PostgreSQL's limit is \
                \(maximumNameBytes) (it would cut the name short)
                """
            )
        }
        if let suffix = reservedSuffixes.first(where: name.hasSuffix) {
            throw PGCloneError(
                .invalidConfiguration,
                """
                refusing to \(purpose) \"\(name)\": names ending in \(suffix) are pgclone's own \
                (\(reservedSuffixes.joined(separator: ", "))) and would collide with a restore of \
                \"\(name.dropLast(suffix.count))\"; choose another name
                """
            )
        }
    }
}
