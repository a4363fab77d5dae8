import PGCloneActors
import Yams

/// The config file (`pgclone.yaml`), read into the settings it can hold. Unknown keys are errors, so
/// a misspelt setting is never silently ignored.
struct ConfigFile {
    /// The file as named in messages.
    var path: String
    var storageLocation: String?
    var database: String?
    var memoryLimit: String?
    var allowDump: Bool?
    var allowRestore: Bool?

    /// Keys accepted now; `dump_configs`, `restore_configs` and `allow_copy` belong to named configs
    /// and `copy`, accepted here so that one file serves every version.
    static let knownKeys: Set<String> = [
        "storage_location", "database", "memory_limit", "allow_dump", "allow_restore", "allow_copy",
        "dump_configs", "restore_configs",
    ]

    init(path: String, contents: String) throws(PGCloneError) {
        self.path = path
        let node: Node?
        do {
            node = try Yams.compose(yaml: contents)
        } catch {
            throw PGCloneError(.invalidConfiguration, "\(path) is not valid YAML: \("\(error)".singleLine)")
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
            case "storage_location": storageLocation = try string(value, key)
            case "database": database = try string(value, key)
            case "memory_limit": memoryLimit = try string(value, key)
            case "allow_dump": allowDump = try bool(value, key)
            case "allow_restore": allowRestore = try bool(value, key)
            default: break
            }
        }
    }

    private func string(_ node: Node, _ key: String) throws(PGCloneError) -> String {
        guard case .scalar(let scalar) = node else {
            throw PGCloneError(.invalidConfiguration, "\(path): \(key) must be a single value")
        }
        return scalar.string
    }

    private func bool(_ node: Node, _ key: String) throws(PGCloneError) -> Bool {
        guard let value = node.bool else {
            throw PGCloneError(.invalidConfiguration, "\(path): \(key) must be true or false")
        }
        return value
    }
}
