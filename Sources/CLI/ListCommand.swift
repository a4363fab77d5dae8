import ArgumentParser
import Foundation
import Logging
import PGCloneActors

struct ListCommand: PGCloneSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List dump keys, newest first.",
        discussion: "With DB_NAME, only that database's dumps."
    )

    @Argument(help: ArgumentHelp("Only dumps of this database.", valueName: "db-name"))
    var databaseName: String?

    @Option(help: ArgumentHelp("Only dumps made with this dump config.", valueName: "name"))
    var dumpConfig: String?

    @Flag(help: "List database names instead of keys.")
    var onlyDbNames = false

    @Flag(help: "List the databases on the server, as :name sources for restore.")
    var local = false

    @Flag(help: "Print JSON: an array of {key, database, config, created_at, size_bytes, layout} (or of names).")
    var json = false

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var maintenance: MaintenanceOptions
    @OptionGroup var common: CommonOptions

    var printsJSON: Bool { json }

    func validate() throws {
        if local && (onlyDbNames || databaseName != nil || dumpConfig != nil) {
            throw ValidationError(
                "--local lists the server's databases; it takes no database name, --dump-config or --only-db-names"
            )
        }
        if !local && maintenance.maintenanceDatabase != nil {
            throw ValidationError(
                "--maintenance-db is where ls --local connects; without --local, ls reads only the storage location"
            )
        }
        if databaseName?.isEmpty == true {
            throw ValidationError("the database name is empty; give one, or none for every database")
        }
        if dumpConfig?.isEmpty == true { throw ValidationError("--dump-config takes the name of a dump config") }
    }

    func execute(_ context: RunContext) async throws {
        let settings = try Settings(
            options: common,
            database: connection.database,
            maintenanceDatabase: maintenance.maintenanceDatabase
        )
        if local {
            // The location is not used here, but one that cannot be used is refused as elsewhere.
            _ = try settings.storage(logger: context.logger, metrics: context.metrics)
            return try await listLocal(settings, context: context)
        }
        let storage = try settings.storage(logger: context.logger, metrics: context.metrics)
        let dumps = try await DumpCatalog(storage: storage, logger: context.logger).dumps(
            of: databaseName,
            config: dumpConfig
        )
        if dumps.isEmpty, await storage.locationIsMissing {
            // Empty either way, but a mistyped location should not look like one without dumps.
            context.logger.warning("\(storage.location) does not exist: no dump was made there")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if onlyDbNames {
            let names = Set(dumps.filter(\.databaseKnown).map(\.database)).sorted()
            if json {
                print(String(decoding: try encoder.encode(names), as: UTF8.self))
            } else {
                for name in names { print(name) }
            }
        } else if json {
            let entries = dumps.map {
                Entry(
                    key: "\($0.key)",
                    database: $0.databaseKnown ? $0.database : nil,
                    config: $0.config,
                    createdAt: $0.key.isoTimestamp,
                    sizeBytes: $0.size,
                    layout: $0.key.layout.rawValue
                )
            }
            print(String(decoding: try encoder.encode(entries), as: UTF8.self))
        } else {
            for dump in dumps { print(dump.key) }
        }
    }

    /// The server's databases but templates, the maintenance databases (`postgres`, `template1`
    /// and a named one) and pgclone's unfinished ones (a killed restore's `D__temp`), which are no
    /// sources to restore.
    private func listLocal(_ settings: Settings, context: RunContext) async throws {
        let admin = try await PostgresConnection.connectMaintenance(
            settings.connection,
            settings.maintenance,
            logger: context.logger
        )
        var rows: [[String?]]
        do {
            try await admin.apply(settings.sessionSettings)
            // The database this listing is about may still refuse connections after a swap that a
            // server crash cut short: it is repaired first.
            if let database = await PostgresConnection.resolveDatabaseName(settings.connection),
                let names = try? DatabaseNames(target: database)
            {
                try await CopyPipeline.repair(names, admin: admin, logger: context.logger)
            }
            let maintenance = settings.maintenance.protected
            let placeholders = maintenance.indices.map { "$\($0 + 1)" }.joined(separator: ", ")
            rows = try await admin.query(
                """
                SELECT datname, shobj_description(oid, 'pg_database'), datallowconn, datconnlimit FROM pg_database \
                WHERE NOT datistemplate AND datname <> current_database() AND datname NOT IN (\(placeholders)) \
                ORDER BY datname
                """,
                maintenance
            )
            // Nor pgclone's unfinished databases (a killed restore's D__temp), which are no sources.
            rows = rows.filter { row in
                DatabaseMarker.unfinished(
                    comment: row[1],
                    allowsConnections: row[2] == "t",
                    connectionLimit: Int(row[3] ?? "") ?? -1,
                    named: row[0] ?? ""
                ) == nil
            }
        } catch {
            await admin.close()
            throw PGCloneError.from(error, step: "listing the server's databases")
        }
        await admin.close()
        let names = rows.compactMap { $0.first ?? nil }.map { ":" + $0 }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(names), as: UTF8.self))
        } else {
            for name in names { print(name) }
        }
    }

    private struct Entry: Encodable {
        var key: String
        /// `null` where neither the key nor the object says surely.
        var database: String?
        var config: String
        var createdAt: String
        var sizeBytes: Int
        var layout: String

        enum CodingKeys: String, CodingKey {
            case key, database, config, layout
            case createdAt = "created_at"
            case sizeBytes = "size_bytes"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(key, forKey: .key)
            try container.encode(database, forKey: .database)
            try container.encode(config, forKey: .config)
            try container.encode(createdAt, forKey: .createdAt)
            try container.encode(sizeBytes, forKey: .sizeBytes)
            try container.encode(layout, forKey: .layout)
        }
    }
}
