import Foundation
import Logging
import PGCloneActors
import PGCloneMetrics
import PGCloneS3
import PGCloneStreams

/// pgclone's settings, resolved from (highest first) command-line flags, `PGCLONE_*` environment
/// variables, the config file and built-in defaults. Each remembers where it came from, for messages.
struct Settings {
    struct Value<T> {
        var value: T
        /// `--memory-limit`, `PGCLONE_MEMORY_LIMIT`, `memory_limit in pgclone.yaml`, `the default`.
        var origin: String
    }

    var storageLocation: Value<String>
    /// The connection, parsed; `nil` origin-wise means libpq's environment decides.
    var connection: ConnectionSettings
    var budget: MemoryBudget
    /// zstd's level for dumps, as written; ``applyCompressionLevel()`` checks and applies it.
    var compressionLevel: Value<String>
    var allowDump: Value<Bool>
    var allowRestore: Value<Bool>
    var allowCopy: Value<Bool>
    /// Where restore, copy and `ls --local` run their administrative statements.
    var maintenance: MaintenanceDatabase
    /// `statement_timeout` and `lock_timeout` for pgclone's own SQL (never pg_restore's).
    var sessionSettings: [(name: String, value: String)]
    var environment: [String: String]
    /// The config file's named configs.
    var dumpConfigs: [String: DumpConfig]
    var restoreConfigs: [String: RestoreConfig]
    var configFile: String

    static let defaultConfigFile = "pgclone.yaml"

    init(
        options: CommonOptions,
        database: String?,
        compressionLevel levelFlag: Int? = nil,
        maintenanceDatabase maintenanceFlag: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(PGCloneError) {
        self.environment = environment
        let file = try Self.loadConfigFile(options: options, environment: environment)
        let fileOrigin = { (key: String) in "\(key) in \(file?.path ?? Self.defaultConfigFile)" }

        storageLocation = Self.pick(
            (options.storageLocation, "--storage-location"),
            (environment["PGCLONE_STORAGE_LOCATION"], "PGCLONE_STORAGE_LOCATION"),
            (file?.storageLocation, fileOrigin("storage_location")),
            default: ".pgclone/"
        )
        if storageLocation.value.isEmpty {
            throw PGCloneError(
                .invalidConfiguration,
                "\(storageLocation.origin) is empty; give a directory or s3://bucket/prefix"
            )
        }

        let conninfo = Self.pick(
            (database, "--database"),
            (environment["DATABASE_URL"], "DATABASE_URL"),
            (file?.database, fileOrigin("database")),
            default: ""
        )
        if conninfo.origin != "the default" && conninfo.value.trimmingWhitespace().isEmpty {
            throw PGCloneError(
                .invalidConfiguration,
                """
                \(conninfo.origin) is empty; give a connection string or a database name, or unset it to use the \
                PG* variables
                """
            )
        }
        connection = try ConnectionSettings(conninfo: conninfo.value, from: conninfo.origin)

        let memory = Self.pick(
            (options.memoryLimit, "--memory-limit"),
            (environment["PGCLONE_MEMORY_LIMIT"], "PGCLONE_MEMORY_LIMIT"),
            (file?.memoryLimit, fileOrigin("memory_limit")),
            default: "\(MemoryBudget.defaultLimit.bytes)"
        )
        guard let limit = ByteCount(parsing: memory.value) else {
            throw PGCloneError(
                .invalidConfiguration,
                "\(memory.origin) \"\(memory.value)\" is not a size; write it like 64MiB, 512MiB or 1GiB"
            )
        }
        budget = try MemoryBudget(limit: limit)
        compressionLevel = Self.pick(
            (levelFlag.map(String.init), "--compression-level"),
            (environment["PGCLONE_COMPRESSION_LEVEL"], "PGCLONE_COMPRESSION_LEVEL"),
            (file?.compressionLevel, fileOrigin("compression_level")),
            default: "\(ZstdCompressionSettings().level)"
        )

        let maintenanceName = Self.pick(
            (maintenanceFlag, "--maintenance-db"),
            (environment["PGCLONE_MAINTENANCE_DB"], "PGCLONE_MAINTENANCE_DB"),
            (file?.maintenanceDatabase, fileOrigin("maintenance_db")),
            default: ""
        )
        if maintenanceName.origin == "the default" {
            maintenance = .standard
        } else if maintenanceName.value.trimmingWhitespace().isEmpty {
            throw PGCloneError(
                .invalidConfiguration,
                """
                \(maintenanceName.origin) is empty; name a database, or leave it out to connect to postgres, else \
                template1
                """
            )
        } else {
            maintenance = .named(maintenanceName.value, origin: maintenanceName.origin)
        }

        allowDump = try Self.pickBool("PGCLONE_ALLOW_DUMP", environment, file?.allowDump, fileOrigin("allow_dump"))
        allowRestore = try Self.pickBool(
            "PGCLONE_ALLOW_RESTORE",
            environment,
            file?.allowRestore,
            fileOrigin("allow_restore")
        )
        allowCopy = try Self.pickBool("PGCLONE_ALLOW_COPY", environment, file?.allowCopy, fileOrigin("allow_copy"))
        sessionSettings = [("statement_timeout", file?.statementTimeout), ("lock_timeout", file?.lockTimeout)]
            .compactMap { name, value in value.map { (name, $0) } }
        dumpConfigs = file?.dumpConfigs ?? [:]
        restoreConfigs = file?.restoreConfigs ?? [:]
        configFile = file?.path ?? Self.defaultConfigFile
    }

    /// Sets the dump's zstd level in the budget: a whole number in zstd's regular range whose tables
    /// fit the memory limit (the workers are reduced first).
    mutating func applyCompressionLevel() throws(PGCloneError) {
        let levels = ZstdCompressionSettings.levels
        guard let level = Int(compressionLevel.value.trimmingWhitespace()), levels.contains(level) else {
            throw PGCloneError(
                .invalidConfiguration,
                """
                \(compressionLevel.origin) \"\(compressionLevel.value)\" is not a zstd level; give a whole number \
                from \(levels.lowerBound) to \(levels.upperBound)
                """
            )
        }
        budget = try MemoryBudget(limit: budget.limit, compressionLevel: level)
        try budget.checkCompressionFits(origin: compressionLevel.origin)
    }

    /// `--metrics-address` or `PGCLONE_METRICS_ADDRESS`, as host and port.
    static func metricsAddress(
        _ options: CommonOptions,
        environment: [String: String]
    ) throws(PGCloneError) -> (host: String, port: Int)? {
        guard
            let text = options.metricsAddress
                ?? environment["PGCLONE_METRICS_ADDRESS"].flatMap({ $0.isEmpty ? nil : $0 })
        else {
            return nil
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            throw PGCloneError(
                .invalidConfiguration,
                "the metrics address must be host:port, like 127.0.0.1:9187 (it is \"\(text)\")"
            )
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    /// `--pushgateway`'s URL, checked: `http://` or `https://` and a host (libcurl would be given
    /// anything, and the command would succeed with a warning at its end).
    static func pushgateway(_ options: CommonOptions) throws(PGCloneError) -> String? {
        guard let text = options.pushgateway else { return nil }
        guard let url = HTTPEndpoint(text), !url.host.isEmpty, !url.hasInvalidPort,
            url.port.map({ (1...65535).contains($0) }) ?? true
        else {
            throw PGCloneError(
                .invalidConfiguration,
                """
                --pushgateway takes the Pushgateway's http:// or https:// URL, like http://pushgateway:9091 \
                (it is \"\(URLPassword.redactingAll(in: text))\")
                """
            )
        }
        return text
    }

    /// `--metrics-textfile`'s directory, checked: it must exist and be writable (node_exporter's
    /// textfile directory; pgclone makes no directory).
    static func metricsTextfile(_ options: CommonOptions) throws(PGCloneError) -> String? {
        guard let directory = options.metricsTextfile else { return nil }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw PGCloneError(
                .invalidConfiguration,
                "--metrics-textfile takes a directory that exists (node_exporter's textfile directory): \(directory)"
            )
        }
        guard access(directory, W_OK) == 0 else {
            throw PGCloneError(
                .invalidConfiguration,
                "--metrics-textfile \(directory) is not writable: \(String(cString: strerror(errno)))"
            )
        }
        return directory
    }

    /// The dump config `name` (`--config`), else `default` from the file, else an empty one.
    func dumpConfig(_ name: String?) throws(PGCloneError) -> DumpConfig {
        try Self.named(name, in: dumpConfigs, kind: "dump_configs", file: configFile) ?? DumpConfig()
    }

    func restoreConfig(_ name: String?) throws(PGCloneError) -> RestoreConfig {
        try Self.named(name, in: restoreConfigs, kind: "restore_configs", file: configFile) ?? RestoreConfig()
    }

    private static func named<Config>(
        _ name: String?,
        in configs: [String: Config],
        kind: String,
        file: String
    ) throws(PGCloneError) -> Config? {
        guard let name else { return configs["default"] }
        guard let config = configs[name] else {
            // "default" always exists: without the file's, it is the built-in, empty one.
            if name == "default" { return nil }
            let known = configs.keys.sorted()
            throw PGCloneError(
                .invalidConfiguration,
                "there is no config \"\(name)\" in \(kind) of \(file)"
                    + (known.isEmpty ? "" : " (it has \(known.joined(separator: ", ")))")
            )
        }
        return config
    }

    /// `location` for messages: after its scheme, what comes before its last "@" written `****`
    /// when it holds a ":" (`user:password@`, which a secret key with a "/" in it breaks up).
    static func shown(_ location: String) -> String {
        guard let at = location.lastIndex(of: "@"), location[..<at].contains(":") else { return location }
        let scheme = location.firstIndex(of: ":").map { location.index(after: $0) } ?? location.startIndex
        let start = location[scheme...].prefix { $0 == "/" }.endIndex
        return location[..<start] + "****" + location[at...]
    }

    /// The storage backend for the location.
    func storage(logger: Logger, metrics: PGCloneMetrics) throws(PGCloneError) -> any StorageBackend {
        let location = storageLocation.value
        guard location.hasPrefix("s3://") else {
            // For messages: a user and password before an "@", as in other URLs, are not shown.
            let location = Self.shown(location)
            if location.lowercased().hasPrefix("s3:") {
                throw PGCloneError(
                    .invalidConfiguration,
                    """
                    the storage location \(location) (\(storageLocation.origin)) is not an S3 location; write \
                    s3://bucket/prefix, in lower case
                    """
                )
            }
            if location.allSatisfy(\.isWhitespace) {
                throw PGCloneError(
                    .invalidConfiguration,
                    """
                    the storage location (\(storageLocation.origin)) is empty or blank; give a directory or \
                    s3://bucket/prefix
                    """
                )
            }
            if let scheme = Self.urlScheme(location) {
                throw PGCloneError(
                    .invalidConfiguration,
                    """
                    the storage location \(location) (\(storageLocation.origin)) is a \(scheme):// URL; pgclone \
                    stores dumps in a local directory or in s3://bucket/prefix
                    """
                )
            }
            let storage = LocalDiskStorage(location: location, readChunkSize: budget.readChunkSize, logger: logger)
            try storage.checkLocation()
            return storage
        }
        let files = AWSSharedFiles(environment: environment)
        let configuration = try S3Configuration(
            location: storageLocation.value,
            environment: environment,
            profileRegion: files.region,
            profileEndpoint: files.settings["endpoint_url"],
            budget: budget
        )
        let credentials = AWSCredentialsProvider(environment: environment, files: files, logger: logger)
        let client = S3Client(configuration: configuration, credentials: credentials, metrics: metrics, logger: logger)
        return S3Storage(client: client, chunkSize: budget.readChunkSize, logger: logger)
    }

    /// The scheme of `text` if it starts like a URL (`gs://`, `file://`), RFC 3986's syntax.
    private static func urlScheme(_ text: String) -> String? {
        guard let range = text.range(of: "://") else { return nil }
        let scheme = text[..<range.lowerBound]
        guard let first = scheme.first, first.isASCII, first.isLetter,
            scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) })
        else { return nil }
        return String(scheme)
    }

    private static func pick<T>(_ candidates: (T?, String)..., default fallback: T) -> Value<T> {
        for (value, origin) in candidates {
            if let value { return Value(value: value, origin: origin) }
        }
        return Value(value: fallback, origin: "the default")
    }

    private static func pickBool(
        _ variable: String,
        _ environment: [String: String],
        _ fileValue: Bool?,
        _ fileOrigin: String
    ) throws(PGCloneError) -> Value<Bool> {
        if let text = environment[variable] {
            switch text.lowercased() {
            case "1", "true", "yes", "on": return Value(value: true, origin: "\(variable)=\(text)")
            case "0", "false", "no", "off": return Value(value: false, origin: "\(variable)=\(text)")
            default:
                throw PGCloneError(.invalidConfiguration, "\(variable) must be true or false (it is \"\(text)\")")
            }
        }
        if let fileValue { return Value(value: fileValue, origin: "\(fileOrigin) is \(fileValue)") }
        return Value(value: true, origin: "the default")
    }

    private static func loadConfigFile(
        options: CommonOptions,
        environment: [String: String]
    ) throws(PGCloneError) -> ConfigFile? {
        let explicit = options.configFile ?? environment["PGCLONE_CONFIG_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        let path = explicit ?? defaultConfigFile
        guard let contents = try readFile(path) else {
            if let explicit {
                throw PGCloneError(.invalidConfiguration, "the config file \(explicit) does not exist")
            }
            return nil
        }
        return try ConfigFile(path: path, contents: contents)
    }

    /// The file's contents, or `nil` if it does not exist.
    private static func readFile(_ path: String) throws(PGCloneError) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return nil }
        guard !isDirectory.boolValue else {
            throw PGCloneError(
                .invalidConfiguration,
                "the config file \(path) is a directory; give the path of a YAML file such as pgclone.yaml"
            )
        }
        // Read to its end, not by its size: a pipe (`--config-file <(envsubst < pgclone.yaml)`), a
        // FIFO or /dev/null has none.
        guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.readToEnd() ?? Data() else {
            // FileHandle says nothing of why; the system does.
            let reason =
                access(path, R_OK) == 0 ? "it could not be read" : String(cString: strerror(errno)).lowercased()
            throw PGCloneError(.invalidConfiguration, "cannot read the config file \(path): \(reason)")
        }
        try? handle.close()
        guard let text = String(data: data, encoding: .utf8) else {
            throw PGCloneError(.invalidConfiguration, "the config file \(path) is not UTF-8 text")
        }
        return text
    }
}
