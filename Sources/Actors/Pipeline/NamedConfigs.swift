package import PGCloneStreams

/// A named dump config (`dump_configs` in the config file).
package struct DumpConfig: Sendable, Hashable {
    /// pg_dump patterns of tables whose data is not dumped (their definitions are), nor that of
    /// their partitions.
    package var excludeTables: [String] = []
    /// Django models (`app.Model`) whose default table (`app_model`) has its data left out.
    package var excludeModels: [String] = []
    /// Shell commands run against the source before pg_dump.
    package var preDumpHooks: [String] = []

    /// Extensions left out of the dump (pg_dump 17 and newer: `--exclude-extension`), for one only a
    /// superuser may create where the dump is restored.
    package var excludeExtensions: [String] = []
    /// Restores of the dump leave the source's owners out (`--no-owner`; pg_dump records owners in
    /// every archive: the dump's metadata says not to restore them).
    package var noOwner = false
    /// The source's privileges are left out of the dump (pg_dump's `--no-acl`).
    package var noACL = false

    package init(
        excludeTables: [String] = [],
        excludeModels: [String] = [],
        preDumpHooks: [String] = [],
        excludeExtensions: [String] = []
    ) {
        self.excludeTables = excludeTables
        self.excludeModels = excludeModels
        self.excludeExtensions = excludeExtensions
        self.preDumpHooks = preDumpHooks
    }

    /// Django's default table name for a model: `auth.User` → `auth_user`.
    package static func tableName(ofModel model: String) -> String? {
        let parts = model.split(separator: ".")
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return "\(parts[0])_\(parts[1])".lowercased()
    }

    /// pg_dump patterns of the tables whose data is left out, with their partitions' and children's
    /// (``TableDataExclusion``): `exclude_tables`, then the tables of `exclude_models`.
    package var excludedTablePatterns: [String] {
        excludeTables + excludeModels.compactMap(Self.tableName(ofModel:))
    }
}

/// A named restore config (`restore_configs` in the config file).
package struct RestoreConfig: Sendable, Hashable {
    /// Shell commands run against `D__temp` before the swap.
    package var preSwapHooks: [String] = []
    /// Keep `D__previous` and `D__current` (see `--reversible`).
    package var reversible = false
    /// A restore by database name picks the newest dump made with this dump config (any, if `nil`).
    package var dumpConfig: String?
    /// The dump's owners are not restored: every object belongs to the restoring role.
    package var noOwner = false
    /// The dump's privileges (GRANTs, REVOKEs, default privileges) are not restored.
    package var noACL = false
    /// pg_restore's `--role`: SET ROLE before restoring, so that this role creates every object and
    /// owns those whose owner is not restored.
    package var role: String?

    /// What a restore of a dump with `metadata` restores of its owners and privileges.
    package func ownership(of metadata: DumpMetadata?) -> OwnershipOptions {
        .restoring(metadata, noOwner: noOwner, noACL: noACL, role: role)
    }

    package init(preSwapHooks: [String] = [], reversible: Bool = false, dumpConfig: String? = nil) {
        self.preSwapHooks = preSwapHooks
        self.reversible = reversible
        self.dumpConfig = dumpConfig
    }
}
