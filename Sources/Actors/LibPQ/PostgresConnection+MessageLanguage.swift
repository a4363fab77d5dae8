extension PostgresConnection {
    /// The language PostgreSQL writes this role's messages in (`lc_messages`, as this session
    /// has it: the role's setting, else the server's), and whether the role may change it for its
    /// sessions (a superuser: `lc_messages` is superuser-only).
    package func messageLanguage() async throws -> (lcMessages: String, superuser: Bool) {
        let row =
            try await query(
                "SELECT current_setting('lc_messages'), rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"
            ).first ?? []
        return (row.first.flatMap { $0 } ?? "", row.count > 1 && row[1] == "t")
    }

    /// Whether PostgreSQL writes its messages in English under `lcMessages` (`C`, `POSIX`,
    /// `C.UTF-8`, `en_US.UTF-8`…, or empty: the server's environment's, C where a service
    /// manager starts it). pgclone reads some of pg_restore's (a role this server lacks, an error
    /// known to be harmless, a REVOKE without effect) in English only.
    package static func writesEnglish(_ lcMessages: String) -> Bool {
        let language = lcMessages.lowercased().prefix { $0 != "." && $0 != "@" }
        return language.isEmpty || language == "c" || language == "posix" || language == "en"
            || language.hasPrefix("en_") || language.hasPrefix("english")
    }
}
