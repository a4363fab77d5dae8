import Glibc

/// The comments pgclone puts on databases (`COMMENT ON DATABASE`): its durable record of which
/// databases are its own, so that it drops a leftover only if it made it; and, while a swap keeps
/// `D` closed, of what `D`'s own comment was, so that `D` can be told apart from a database a DBA
/// closed and be reopened as it was after a server crash in the middle of the swap.
package enum DatabaseMarker {
    static let prefix = "pgclone: "
    private static let closedPrefix = "pgclone: closed for a swap"
    private static let commentBefore = "; its comment was: "
    private static let noCommentBefore = "; it had no comment"

    /// On `D__temp` while a restore runs.
    static func temporary(target: String, started: String) -> String {
        "\(prefix)temporary database of a restore into \"\(target)\" started \(started) by pgclone pid \(getpid())"
    }

    /// On `D__snap`, then `D__current`: the restore as pg_restore left it.
    static func snapshot(target: String, started: String) -> String {
        """
        \(prefix)snapshot of the restore into \"\(target)\" started \(started), before its pre-swap hooks \
        (restore :current)
        """
    }

    /// On `D__previous`: the database a `--reversible` restore replaced.
    static func previous(target: String, started: String) -> String {
        "\(prefix)\"\(target)\" as it was before the restore started \(started) (restore :previous)"
    }

    /// On a database `copy :NAME` made.
    static func copy(of source: String, started: String) -> String {
        "\(prefix)copy of \"\(source)\" made \(started) (restore :NAME restores it)"
    }

    /// On a database the swap displaced, dropped right after it.
    static func displaced(target: String) -> String {
        "\(prefix)displaced by a restore into \"\(target)\"; pgclone drops it"
    }

    /// On `D` itself while the swap keeps it closed, set in the same transaction that closes it:
    /// `D`'s own comment (`nil`: none) follows, to be put back when it opens again.
    static func closedForSwap(comment: String?) -> String {
        closedPrefix + (comment.map { commentBefore + $0 } ?? noCommentBefore)
    }

    /// For `D`'s comment: `nil` if a swap did not close it; else its comment from before (which
    /// may be `nil` itself).
    static func commentBeforeSwap(_ comment: String?) -> String?? {
        guard let comment, comment.hasPrefix(closedPrefix) else { return nil }
        let rest = comment.dropFirst(closedPrefix.count)
        if rest.hasPrefix(commentBefore) { return .some(String(rest.dropFirst(commentBefore.count))) }
        return .some(nil)
    }

    /// What the database is if it is one of pgclone's unfinished ones, which no restore or copy
    /// may take as its source (its content may be half restored): a restore's `D__temp` (running,
    /// or killed before its swap), a database a swap displaced (about to be dropped), or one
    /// pgclone was killed making (closed with no comment, and named `…__temp`, `…__swap` or
    /// `…__snap`). `nil` for any other, its finished snapshots and copies included.
    package static func unfinished(_ properties: DatabaseProperties, named name: String) -> String? {
        unfinished(
            comment: properties.comment,
            allowsConnections: properties.allowsConnections,
            connectionLimit: properties.connectionLimit,
            named: name
        )
    }

    /// ``unfinished(_:named:)`` from `pg_database`'s columns (a listing reads them for every
    /// database at once).
    package static func unfinished(
        comment: String?,
        allowsConnections: Bool,
        connectionLimit: Int,
        named name: String
    ) -> String? {
        if comment?.hasPrefix(prefix + "temporary database of a restore") == true {
            return "the temporary database of a restore (one running, or one killed before its swap)"
        }
        if comment?.hasPrefix(prefix + "displaced by a restore") == true {
            return "a database a restore displaced, which it drops"
        }
        // Closed, limit 0, no comment: a DBA's archive may look so too; only pgclone's own names
        // (a copy killed before its marking is whole, CREATE DATABASE being one step).
        if isHalfMade(comment: comment, allowsConnections: allowsConnections, connectionLimit: connectionLimit),
            ["__temp", "__swap", "__snap"].contains(where: name.hasSuffix)
        {
            return "a database pgclone was killed making (closed, no comment)"
        }
        return nil
    }

    /// Whether `comment` is one of pgclone's.
    static func isPGClone(_ comment: String?) -> Bool {
        comment?.hasPrefix(prefix) == true
    }

    /// Whether pgclone made the database: its comment is pgclone's, or it is closed the way
    /// pgclone creates its databases before marking them (no comment, no connections allowed,
    /// connection limit 0) — what a pgclone killed between the two steps leaves.
    static func isPGClone(_ properties: DatabaseProperties) -> Bool {
        isPGClone(properties.comment) || isHalfMade(properties)
    }

    /// Whether the database is one pgclone created and was killed before marking: closed,
    /// connection limit 0, no comment.
    static func isHalfMade(_ properties: DatabaseProperties) -> Bool {
        isHalfMade(
            comment: properties.comment,
            allowsConnections: properties.allowsConnections,
            connectionLimit: properties.connectionLimit
        )
    }

    private static func isHalfMade(comment: String?, allowsConnections: Bool, connectionLimit: Int) -> Bool {
        comment == nil && !allowsConnections && connectionLimit == 0
    }
}
