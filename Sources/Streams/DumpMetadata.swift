import FoundationEssentials

/// What a pgclone dump says about itself, stored as JSON in a zstd skippable frame at the start of
/// the object, so the dump needs no sidecar file and plain `zstd -d` still decodes it.
package struct DumpMetadata: Codable, Sendable, Equatable {
    /// Always `pgclone`: tells pgclone's frame from other tools' skippable frames.
    package var format: String
    package var formatVersion: Int
    package var pgcloneVersion: String
    /// `server_version` of the source, e.g. `15.18`.
    package var serverVersion: String
    /// The source database's name.
    package var database: String
    /// The dump config the dump was made with (`nil` in dumps of earlier releases: their key
    /// says it).
    package var dumpConfig: String?
    /// Creation time, ISO 8601 in UTC.
    package var createdAt: String
    /// Database-level settings of the source (`pg_db_role_setting`), which pg_dump does not dump
    /// without `--create`.
    package var settings: [DatabaseSetting]
    /// The source's encoding and locale, which pg_dump does not dump without `--create` either
    /// (`nil` in dumps of earlier releases).
    package var locale: DatabaseLocale?
    /// The source's owner, database privileges, connection limit and comment, which a first
    /// restore (no `D` yet) gives the new database as far as its roles exist here (`nil` in dumps
    /// of earlier releases).
    package var access: DatabaseAccess?
    /// Whether the archive's owners are the source's to restore (`nil` in dumps of earlier
    /// releases, which were restored without them: pg_dump records owners in every archive, even
    /// with `--no-owner`).
    package var owners: Bool?
    /// Whether the archive holds the source's privileges (`nil` in dumps of earlier releases, made
    /// with `--no-acl`).
    package var privileges: Bool?
    /// Whether the source has a schema named `public` (`nil` in dumps of earlier releases). A
    /// new database has one, and an archive cannot say it was dropped (pg_dump leaves `public`
    /// out unless it differs from its default), so a restore drops it when this is `false`.
    package var publicSchema: Bool?
    /// Whether the source has the extension `plpgsql` (`nil` in dumps of earlier releases). A new
    /// database has it, with `USAGE` on the language for every role, and pg_dump leaves it out,
    /// so a restore drops it when this is `false`, as it drops `public`.
    package var plpgsql: Bool?
    /// PUBLIC's privileges on the objects every new database has, as the source has them, by
    /// object (`LANGUAGE plpgsql`, `SCHEMA public`: `["USAGE"]`; `nil` in dumps of earlier
    /// releases). The dump's GRANTs and REVOKEs on them take effect only for their owner (a
    /// bootstrap superuser's): a restore says where PUBLIC keeps more than this.
    package var publicPrivileges: [String: [String]]?

    package static let currentFormatVersion = 1

    package init(
        pgcloneVersion: String,
        serverVersion: String,
        database: String,
        dumpConfig: String?,
        createdAt: String,
        settings: [DatabaseSetting],
        locale: DatabaseLocale? = nil,
        access: DatabaseAccess? = nil,
        owners: Bool? = nil,
        privileges: Bool? = nil,
        publicSchema: Bool? = nil,
        plpgsql: Bool? = nil,
        publicPrivileges: [String: [String]]? = nil
    ) {
        self.format = "pgclone"
        self.formatVersion = Self.currentFormatVersion
        self.pgcloneVersion = pgcloneVersion
        self.serverVersion = serverVersion
        self.database = database
        self.dumpConfig = dumpConfig
        self.createdAt = createdAt
        self.settings = settings
        self.locale = locale
        self.access = access
        self.owners = owners
        self.privileges = privileges
        self.publicSchema = publicSchema
        self.plpgsql = plpgsql
        self.publicPrivileges = publicPrivileges
    }

    /// The metadata as a zstd skippable frame: magic `0x184D2A50`, payload length, JSON.
    package func skippableFrame() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = Array(try encoder.encode(self))
        var frame = ZstdFrame.skippableMagicBytes
        frame += withUnsafeBytes(of: UInt32(json.count).littleEndian) { Array($0) }
        frame += json
        return frame
    }

    /// Decodes the payload of a skippable frame; `nil` if it is not pgclone's.
    package init?(skippableFramePayload payload: [UInt8]) {
        guard let decoded = try? JSONDecoder().decode(DumpMetadata.self, from: Data(payload)),
            decoded.format == "pgclone"
        else { return nil }
        self = decoded
    }
}

/// One database-level setting: `ALTER DATABASE … SET name = value`, or, with a role,
/// `ALTER ROLE role IN DATABASE … SET name = value`.
package struct DatabaseSetting: Codable, Sendable, Hashable {
    /// `nil` for a setting of the database for all roles.
    package var role: String?
    package var name: String
    /// The value as PostgreSQL stores it in `setconfig` (list values are comma-separated, with
    /// elements double-quoted where needed).
    package var value: String

    package init(role: String?, name: String, value: String) {
        self.role = role
        self.name = name
        self.value = value
    }

    /// Whether it is a custom setting (`myapp.api_token`: a dot in its name), which may hold
    /// anything, a secret too, rather than one of PostgreSQL's own.
    package var isCustom: Bool { name.contains(".") }

    /// `name = value` for messages, or the name alone for a custom setting (``isCustom``), whose
    /// value is not shown.
    package var shown: String { isCustom ? name : "\(name) = \(value)" }

    /// Parses one `setconfig` element, `name=value`.
    package init?(role: String?, setconfig entry: String) {
        guard let equals = entry.firstIndex(of: "=") else { return nil }
        self.init(role: role, name: String(entry[..<equals]), value: String(entry[entry.index(after: equals)...]))
    }
}

/// A database's data properties: what its text is and how it sorts (`pg_database`'s encoding,
/// `datcollate`, `datctype`, `datlocprovider`, the ICU or builtin locale, ICU rules). Indexes on text
/// hold the order these give, so a restore keeps the source's.
package struct DatabaseLocale: Codable, Sendable, Hashable, CustomStringConvertible {
    package var encoding: String
    package var collate: String
    package var ctype: String
    /// `libc`, `icu` or `builtin` (PostgreSQL 17).
    package var provider: String
    /// The ICU locale (`en-US`) or the builtin one (`C.UTF-8`); `nil` for libc.
    package var locale: String?
    /// ICU tailoring rules (PostgreSQL 16).
    package var icuRules: String?

    package init(encoding: String, collate: String, ctype: String, provider: String, locale: String?, icuRules: String?)
    {
        self.encoding = encoding
        self.collate = collate
        self.ctype = ctype
        self.provider = provider
        self.locale = locale
        self.icuRules = icuRules
    }

    /// `UTF8, icu en-US` / `UTF8, libc en_US.UTF-8`, for messages.
    package var description: String {
        var text = "\(encoding), \(provider) \(locale ?? (collate == ctype ? collate : "\(collate)/\(ctype)"))"
        if provider != "libc" && collate != "C" { text += " (LC_COLLATE \(collate))" }
        if let icuRules, !icuRules.isEmpty { text += " with ICU rules" }
        return text
    }
}

/// A database's access properties: who owns it, who may connect, create and make temporary tables
/// in it, how many sessions it takes, its comment.
package struct DatabaseAccess: Codable, Sendable, Hashable {
    package var owner: String
    /// `datacl`, one entry per privilege; `nil` for the default privileges.
    package var privileges: [Grant]?
    package var connectionLimit: Int
    package var comment: String?

    package struct Grant: Codable, Sendable, Hashable {
        /// `nil` for PUBLIC.
        package var grantee: String?
        /// `CONNECT`, `CREATE` or `TEMPORARY`.
        package var privilege: String
        package var grantable: Bool
        /// Who granted it: the owner, or a role holding it with grant option (a chain, which
        /// `REVOKE … CASCADE` of that role's option undoes). `nil` in dumps of earlier releases.
        package var grantor: String?

        package init(grantee: String?, privilege: String, grantable: Bool, grantor: String? = nil) {
            self.grantee = grantee
            self.privilege = privilege
            self.grantable = grantable
            self.grantor = grantor
        }
    }

    package init(owner: String, privileges: [Grant]?, connectionLimit: Int, comment: String?) {
        self.owner = owner
        self.privileges = privileges
        self.connectionLimit = connectionLimit
        self.comment = comment
    }
}
