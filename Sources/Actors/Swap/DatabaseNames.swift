/// The databases the restore-and-swap protocol uses for target `D`.
package struct DatabaseNames: Sendable, Hashable {
    /// `D`, the database the application uses.
    package var target: String
    /// `D__temp`: restored into, then renamed to `D`.
    package var temporary: String { target + "__temp" }
    /// `D__swap`: the old `D`, briefly, inside the swap.
    package var swapped: String { target + "__swap" }
    /// `D__previous` and `D__current`: the reversible restore's snapshots.
    package var previous: String { target + "__previous" }
    package var current: String { target + "__current" }

    /// PostgreSQL's limit on identifiers (NAMEDATALEN - 1), in bytes.
    static let maximumNameBytes = 63

    /// Checks that every derived name fits PostgreSQL's 63-byte limit, before anything is done.
    package init(target: String) throws(PGCloneError) {
        self.target = target
        guard !target.isEmpty else {
            throw PGCloneError(.invalidConfiguration, "the target database name is empty")
        }
        let longest = [temporary, swapped, previous, current].max { $0.utf8.count < $1.utf8.count }!
        guard longest.utf8.count <= Self.maximumNameBytes else {
            throw PGCloneError(
                .invalidConfiguration,
                "the database name \"\(target)\" is too long to restore into: \"\(longest)\" would exceed PostgreSQL's \(Self.maximumNameBytes)-byte limit on names; use a name of at most \(Self.maximumNameBytes - (longest.utf8.count - target.utf8.count)) bytes"
            )
        }
    }
}
