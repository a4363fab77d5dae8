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

    package init(excludeTables: [String] = [], excludeModels: [String] = [], preDumpHooks: [String] = [], excludeExtensions: [String] = []) {
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

    package init(preSwapHooks: [String] = [], reversible: Bool = false, dumpConfig: String? = nil) {
        self.preSwapHooks = preSwapHooks
        self.reversible = reversible
        self.dumpConfig = dumpConfig
    }
}
