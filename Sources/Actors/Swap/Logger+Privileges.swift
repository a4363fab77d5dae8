package import Logging

extension Logger {
    /// One warning for database privileges another role granted from its grant option that the
    /// owner of `database` granted instead, as `role` may not act as that role: revoking its option
    /// no longer takes them.
    func warnRegranted(_ grants: [DatabaseProperties.Grant], on database: String, role: String) {
        guard !grants.isEmpty else { return }
        let one = grants.count == 1
        warning(
            """
            \(grants.map(DatabaseProperties.describe).joined(separator: "; ")) on \"\(database)\" \
            \(one ? "is" : "are") granted by its owner: \"\(role)\" may not SET ROLE to the role that granted \
            \(one ? "it" : "them"), so revoking that role's grant option no longer takes \(one ? "it" : "them") with it
            """
        )
    }
}
