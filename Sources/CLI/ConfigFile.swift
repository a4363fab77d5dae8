import Foundation
import PGCloneActors
import PGCloneStreams
import Yams

/// The config file (`pgclone.yaml`), read into the settings it can hold. Unknown keys are errors, so
/// a misspelt setting is never silently ignored.
struct ConfigFile {
    /// The file as named in messages.
    var path: String
    var storageLocation: String?
    var database: String?
    var memoryLimit: String?
    var compressionLevel: String?
    var allowDump: Bool?
    var allowRestore: Bool?
    var allowCopy: Bool?
    var statementTimeout: String?
    var lockTimeout: String?
    /// `maintenance_db`: the only database restore, copy and `ls --local` connect to for their
    /// administrative statements.
    var maintenanceDatabase: String?
    /// Named configs, as django-pgclone's `PGCLONE_DUMP_CONFIGS` and `PGCLONE_RESTORE_CONFIGS`.
    var dumpConfigs: [String: DumpConfig] = [:]
    var restoreConfigs: [String: RestoreConfig] = [:]

    static let knownKeys: Set<String> = [
        "storage_location", "database", "memory_limit", "compression_level", "allow_dump", "allow_restore",
        "allow_copy",
        "statement_timeout", "lock_timeout", "maintenance_db", "dump_configs", "restore_configs",
    ]

    init(path: String, contents: String) throws(PGCloneError) {
        self.path = path
        let node: Node?
        do {
            node = try Yams.compose(yaml: contents)
        } catch {
            throw PGCloneError(.invalidConfiguration, "\(path) is not valid YAML: \(Self.describe(error))")
        }
        guard let node else { return }
        guard case .mapping(let mapping) = node else {
            throw PGCloneError(.invalidConfiguration, "\(path) must be a mapping of settings (key: value)")
        }
        for (keyNode, value) in mapping {
            guard let key = keyNode.string, Self.knownKeys.contains(key) else {
                let known = Self.knownKeys.sorted().joined(separator: ", ")
                throw PGCloneError(
                    .invalidConfiguration,
                    "\(path): unknown setting \"\(keyNode.string ?? "?")\"; the settings are \(known)"
                )
            }
            switch key {
            case "storage_location": storageLocation = try location(value, key)
            case "database": database = try string(value, key)
            case "memory_limit": memoryLimit = try string(value, key)
            case "compression_level": compressionLevel = try string(value, key)
            case "allow_dump": allowDump = try bool(value, key)
            case "allow_restore": allowRestore = try bool(value, key)
            case "allow_copy": allowCopy = try bool(value, key)
            case "statement_timeout": statementTimeout = try timeout(value, key)
            case "lock_timeout": lockTimeout = try timeout(value, key)
            case "maintenance_db": maintenanceDatabase = try string(value, key)
            case "dump_configs":
                dumpConfigs = try namedConfigs(value, key) { fields, where_ throws(PGCloneError) in
                    try checkKeys(
                        fields,
                        [
                            "exclude_tables", "exclude_models", "pre_dump_hooks", "exclude_extensions", "no_owner",
                            "no_acl",
                        ],
                        where_
                    )
                    var config = DumpConfig(
                        excludeTables: try strings(fields["exclude_tables"], "\(where_).exclude_tables"),
                        excludeModels: try strings(fields["exclude_models"], "\(where_).exclude_models"),
                        preDumpHooks: try strings(fields["pre_dump_hooks"], "\(where_).pre_dump_hooks"),
                        excludeExtensions: try strings(fields["exclude_extensions"], "\(where_).exclude_extensions")
                    )
                    config.noOwner =
                        try fields["no_owner"].map { node throws(PGCloneError) in try bool(node, "\(where_).no_owner") }
                        ?? false
                    config.noACL =
                        try fields["no_acl"].map { node throws(PGCloneError) in try bool(node, "\(where_).no_acl") }
                        ?? false
                    return config
                }
            case "restore_configs":
                restoreConfigs = try namedConfigs(value, key) { fields, where_ throws(PGCloneError) in
                    try checkKeys(
                        fields,
                        ["pre_swap_hooks", "reversible", "dump_config", "no_owner", "no_acl", "role"],
                        where_
                    )
                    var config = RestoreConfig(
                        preSwapHooks: try strings(fields["pre_swap_hooks"], "\(where_).pre_swap_hooks"),
                        reversible: try fields["reversible"].map { node throws(PGCloneError) in
                            try bool(node, "\(where_).reversible")
                        } ?? false,
                        dumpConfig: try fields["dump_config"].map { node throws(PGCloneError) in
                            let name = try self.name(node, "\(where_).dump_config")
                            guard !name.isEmpty else {
                                throw PGCloneError(
                                    .invalidConfiguration,
                                    "\(path): \(where_).dump_config names no dump config; give one or leave the key out"
                                )
                            }
                            return name
                        }
                    )
                    config.noOwner =
                        try fields["no_owner"].map { node throws(PGCloneError) in try bool(node, "\(where_).no_owner") }
                        ?? false
                    config.noACL =
                        try fields["no_acl"].map { node throws(PGCloneError) in try bool(node, "\(where_).no_acl") }
                        ?? false
                    config.role = try fields["role"].map { node throws(PGCloneError) in
                        let role = try name(node, "\(where_).role")
                        guard !role.isEmpty else {
                            throw PGCloneError(
                                .invalidConfiguration,
                                "\(path): \(where_).role names no role; give one or leave the key out"
                            )
                        }
                        return role
                    }
                    return config
                }
            default: break
            }
        }
    }

    /// A mapping of names to configs, each a mapping of fields.
    private func namedConfigs<Config>(
        _ node: Node,
        _ key: String,
        _ make: ([String: Node], String) throws(PGCloneError) -> Config
    ) throws(PGCloneError) -> [String: Config] {
        guard case .mapping(let mapping) = node else {
            throw PGCloneError(.invalidConfiguration, "\(path): \(key) must map config names to their settings")
        }
        var configs: [String: Config] = [:]
        for (nameNode, value) in mapping {
            let name = try string(nameNode, "a config's name in \(key)")
            if key == "dump_configs", name == "_custom" {
                throw PGCloneError(
                    .invalidConfiguration,
                    """
                    \(path): \(key) cannot name a config _custom: it is what dumps made with content flags and no \
                    --config are recorded as; give it another name
                    """
                )
            }
            var fields: [String: Node] = [:]
            if case .mapping(let entries) = value {
                for (field, fieldValue) in entries { fields[field.string ?? "?"] = fieldValue }
            } else if value.null == nil {
                throw PGCloneError(.invalidConfiguration, "\(path): \(key).\(name) must be a mapping of settings")
            }
            configs[name] = try make(fields, "\(key).\(name)")
        }
        return configs
    }

    private func checkKeys(_ fields: [String: Node], _ known: [String], _ where_: String) throws(PGCloneError) {
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw PGCloneError(
                .invalidConfiguration,
                """
                \(path): unknown setting \"\(unknown)\" in \(where_); the settings are \
                \(known.joined(separator: ", "))
                """
            )
        }
    }

    /// A list of strings; a single string counts as a list of one (django-pgclone allowed both).
    private func strings(_ node: Node?, _ key: String) throws(PGCloneError) -> [String] {
        guard let node else { return [] }
        switch node {
        // `key:` with nothing after it: no items.
        case .scalar(let scalar) where scalar.style == .plain && node.null != nil: return []
        case .scalar: return [try string(node, key)]
        case .sequence(let sequence):
            var values: [String] = []
            for element in sequence {
                guard case .scalar = element else {
                    throw PGCloneError(.invalidConfiguration, "\(path): \(key) must be a list of strings")
                }
                // An item of YAML's null (`- ~`) would be run or matched as the text "null".
                values.append(try string(element, "an item of \(key)"))
            }
            return values
        default:
            throw PGCloneError(.invalidConfiguration, "\(path): \(key) must be a list of strings")
        }
    }

    /// A single value; YAML's plain `null`, `~` or nothing is none (it would be the text "null").
    private func string(_ node: Node, _ key: String) throws(PGCloneError) -> String {
        guard case .scalar(let scalar) = node else {
            throw PGCloneError(.invalidConfiguration, "\(path): \(key) must be a single value")
        }
        guard scalar.style != .plain || node.null == nil else {
            throw PGCloneError(
                .invalidConfiguration,
                """
                \(path): \(key) has no value (\(scalar.string.isEmpty ? "empty" : scalar.string) is YAML's null); \
                write one, or leave the key out
                """
            )
        }
        return scalar.string
    }

    /// A path, `~/` at its start standing for the home directory, as in a shell.
    private func location(_ node: Node, _ key: String) throws(PGCloneError) -> String {
        let value = try string(node, key)
        guard value == "~" || value.hasPrefix("~/") else { return value }
        guard let home = ProcessInfo.processInfo.environment["HOME"], !home.isEmpty else {
            throw PGCloneError(
                .invalidConfiguration,
                "\(path): \(key) starts with ~, and HOME is not set; write the whole path"
            )
        }
        return home + value.dropFirst()
    }

    /// A name (a role's, a dump config's): a string, which a plain `null`, `true` or `5` is not in
    /// YAML.
    private func name(_ node: Node, _ key: String) throws(PGCloneError) -> String {
        if case .scalar(let scalar) = node, scalar.style == .plain,
            node.null != nil || node.bool != nil || node.int != nil
        {
            throw PGCloneError(
                .invalidConfiguration,
                """
                \(path): \(key) is \(scalar.string.isEmpty ? "empty" : scalar.string), which is not a name; write \
                the name (in quotes if it looks like a number or a boolean), or leave the key out
                """
            )
        }
        return try string(node, key)
    }

    /// A PostgreSQL duration (`statement_timeout`'s syntax: milliseconds, or a number with one of
    /// us, ms, s, min, h, d), checked here so that a wrong one is named with its file, not found by
    /// the server later.
    private func timeout(_ node: Node, _ key: String) throws(PGCloneError) -> String {
        let value = try string(node, key)
        guard Self.isDuration(value) else {
            throw PGCloneError(
                .invalidConfiguration,
                "\(path): \(key) is \"\(value)\", which is not a duration; write it like 30s, 5min or 0 (no limit)"
            )
        }
        return value
    }

    /// PostgreSQL's syntax for these settings, within their range (at most 2147483647 ms).
    static func isDuration(_ text: String) -> Bool {
        let trimmed = text.trimmingWhitespace()
        let number = trimmed.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        let unit = String(trimmed.dropFirst(number.count)).trimmingWhitespace()
        let milliseconds: [String: Double] = [
            "": 1, "us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000,
        ]
        guard let value = Double(number), let scale = milliseconds[unit] else { return false }
        return value * scale <= Double(Int32.max)
    }

    private func bool(_ node: Node, _ key: String) throws(PGCloneError) -> Bool {
        guard let value = node.bool else {
            throw PGCloneError(.invalidConfiguration, "\(path): \(key) must be true or false")
        }
        return value
    }
}

extension ConfigFile {
    /// Where and what the YAML error is, without the file's text (Yams quotes it, and a config
    /// file may hold a password in a connection string, or be megabytes of a wrong file).
    static func describe(_ error: any Error) -> String {
        guard let error = error as? YamlError else { return "it could not be parsed" }
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return "line \(mark.line), column \(mark.column): \(problem)"
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
            return "line \(context.mark.line): \(keys) \(duplicates.count == 1 ? "appears" : "appear") more than once"
        case .reader(let problem, _, _, _):
            return problem
        default:
            return "it could not be parsed"
        }
    }
}
