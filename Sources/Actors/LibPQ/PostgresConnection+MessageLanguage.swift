extension PostgresConnection {
    /// The language PostgreSQL writes this session's messages in (`lc_messages`: its login role's
    /// setting, else the database's or the server's), the login role (`session_user`, whose
    /// settings its sessions start with), and whether that role may set it at the start of a
    /// session (`lc_messages` is superuser-only, unless granted: `GRANT SET ON PARAMETER`,
    /// PostgreSQL 15 and later).
    package func messageLanguage() async throws -> (lcMessages: String, sessionUser: String, maySet: Bool) {
        let granted =
            serverVersion >= 150_000 ? "has_parameter_privilege(session_user, 'lc_messages', 'SET')" : "false"
        let row =
            try await query(
                """
                SELECT current_setting('lc_messages'), rolname, rolsuper OR \(granted) FROM pg_catalog.pg_roles \
                WHERE rolname = session_user
                """
            ).first ?? []
        return (row.first.flatMap { $0 } ?? "", row.count > 1 ? row[1] ?? "" : "", row.count > 2 && row[2] == "t")
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
