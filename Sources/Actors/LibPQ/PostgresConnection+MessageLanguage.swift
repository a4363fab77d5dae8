extension PostgresConnection {
    /// The language PostgreSQL writes the messages of the login role's sessions in a new database
    /// (`D__temp`): the role's own `lc_messages` setting, else the server's (this session's,
    /// unless this database has one of its own: then `nil`, not known); the login role
    /// (`session_user`, whose settings its sessions start with); and whether that role may set it
    /// at the start of a session (`lc_messages` is superuser-only, unless granted: `GRANT SET ON
    /// PARAMETER`, PostgreSQL 15 and later).
    package func messageLanguage() async throws -> (lcMessages: String?, sessionUser: String, maySet: Bool) {
        let granted =
            serverVersion >= 150_000 ? "has_parameter_privilege(session_user, 'lc_messages', 'SET')" : "false"
        let row =
            try await query(
                """
                SELECT coalesce(
                    (SELECT substr(c, length('lc_messages=') + 1)
                     FROM pg_catalog.pg_db_role_setting AS s, unnest(s.setconfig) AS c
                     WHERE s.setdatabase = 0 AND s.setrole = r.oid AND c LIKE 'lc\\_messages=%' LIMIT 1),
                    CASE WHEN (SELECT source FROM pg_catalog.pg_settings WHERE name = 'lc_messages')
                              IN ('database', 'database user') THEN NULL
                         ELSE current_setting('lc_messages') END),
                    r.rolname, r.rolsuper OR \(granted)
                FROM pg_catalog.pg_roles AS r WHERE r.rolname = session_user
                """
            ).first ?? []
        return (row.first ?? nil, row.count > 1 ? row[1] ?? "" : "", row.count > 2 && row[2] == "t")
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
