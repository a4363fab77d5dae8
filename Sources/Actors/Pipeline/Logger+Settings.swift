import Logging
import PGCloneStreams

/// The warnings about database settings that the restore and the copy share.
extension Logger {
    /// One warning for `target`'s whole-database settings that a restore from `source` (what it
    /// is called: "the dump's database") did not keep, as its settings are the source's; with
    /// their values, which are gone from the server, but for custom settings (`myapp.dsn`), whose
    /// values may be secrets.
    func warnDropped(_ dropped: [DatabaseSetting], of target: String, source: String) {
        guard !dropped.isEmpty else { return }
        let one = dropped.count == 1
        let settings = dropped.map { $0.isCustom ? $0.name : "\($0.name)=\($0.value)" }
        warning(
            """
            \"\(target)\" no longer has the setting\(one ? "" : "s") \(settings.joined(separator: "; ")), which \
            \(source) has not (a restored database takes its source's settings): set \(one ? "it" : "them") again \
            with ALTER DATABASE \"\(target)\" SET if \(one ? "it is" : "they are") needed
            """
        )
    }

    /// One warning for each setting that could not be carried over, with why.
    func warnSkipped(_ skipped: [(DatabaseSetting, String)]) {
        for (setting, reason) in skipped {
            warning("skipped setting \(setting.name)\(setting.role.map { " of role \"\($0)\"" } ?? ""): \(reason)")
        }
    }
}
