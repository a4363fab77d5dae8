import Foundation

/// pg_restore errors pgclone knows: the few that are harmless, which a restore reports as warnings
/// instead of failing, and those it can say more about than pg_restore does.
///
/// Harmless, each matched on both the error and the statement that raised it:
/// - `SET transaction_timeout = 0;` on a server older than 17: pg_restore 17 and newer set it at
///   the start of every session, and an older server does not have the setting (restoring a newer
///   server's dump into an older one is an everyday use, and takes the newer pg_restore).
/// - `COMMENT ON EXTENSION …` failing with "must be owner of extension": a managed server's
///   provider installed the extension (plpgsql, say), and only its owner may set its comment.
package enum KnownRestoreErrors {
    /// Why `entry` does no harm, or `nil` if it may.
    package static func harmless(_ entry: ChildStderr.Entry) -> String? {
        let statement = entry.statement ?? ""
        if entry.message.contains("unrecognized configuration parameter \"transaction_timeout\""),
            statement.hasPrefix("SET transaction_timeout")
        {
            return "this server has no transaction_timeout, which pg_restore 17 and newer set"
        }
        if entry.message.contains("must be owner of extension"), statement.hasPrefix("COMMENT ON EXTENSION") {
            return "only the extension's owner may set its comment"
        }
        return nil
    }

    /// The extension `entry` failed to create because only a superuser may, if that is what it says
    /// (not a trusted extension the role lacked CREATE on the database for: the server's hint
    /// tells them apart).
    package static func extensionNeedingSuperuser(_ entry: ChildStderr.Entry) -> String? {
        guard let range = entry.message.range(of: "permission denied to create extension \""),
            entry.hint?.contains("Must have CREATE privilege") != true
        else { return nil }
        let rest = entry.message[range.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }
}
