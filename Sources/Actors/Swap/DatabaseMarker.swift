/// The comments pgclone puts on the databases it makes (`COMMENT ON DATABASE`): its durable record
/// of which databases are its own, so that it drops a leftover only if it made it, and, after a
/// server crash in the middle of a swap, can tell that the target refuses connections because of
/// pgclone and not because a DBA said so.
package enum DatabaseMarker {
    static let prefix = "pgclone: "
    private static let acceptedBefore = "accepted connections before it"
    private static let refusedBefore = "refused connections before it"

    /// On `D__temp` while a restore runs: which restore, and whether `D` accepted connections then.
    static func temporary(target: String, targetAcceptedConnections: Bool, started: String) -> String {
        "\(prefix)temporary database of a restore into \"\(target)\" started \(started) by pgclone pid \(getProcessID()); \"\(target)\" \(targetAcceptedConnections ? acceptedBefore : refusedBefore)"
    }

    /// On `D__snap`, then `D__current`: the restore as pg_restore left it.
    static func snapshot(target: String, started: String) -> String {
        "\(prefix)snapshot of the restore into \"\(target)\" started \(started), before its pre-swap hooks (restore :current)"
    }

    /// On `D__previous`: the database a `--reversible` restore replaced.
    static func previous(target: String, started: String) -> String {
        "\(prefix)\"\(target)\" as it was before the restore started \(started) (restore :previous)"
    }

    /// On a database the swap displaced, dropped right after it.
    static func displaced(target: String) -> String {
        "\(prefix)displaced by a restore into \"\(target)\"; pgclone drops it"
    }

    /// Whether `comment` is one of pgclone's.
    static func isPGClone(_ comment: String?) -> Bool {
        comment?.hasPrefix(prefix) == true
    }

    /// For a `D__temp` comment: whether `D` accepted connections when that restore began; `nil`
    /// if the comment is not a temporary database's.
    static func targetAcceptedConnections(_ comment: String?) -> Bool? {
        guard let comment, comment.hasPrefix(prefix + "temporary database of a restore into ") else { return nil }
        if comment.hasSuffix(acceptedBefore) { return true }
        if comment.hasSuffix(refusedBefore) { return false }
        return nil
    }
}

import Glibc

private func getProcessID() -> Int32 { getpid() }
