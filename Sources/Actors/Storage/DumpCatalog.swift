package import Logging
package import PGCloneStreams

/// The dumps in a storage location as the dumps themselves say: which database each is of and
/// with which dump config it was made, for `ls`, `prune`, and `restore`/`verify` by name.
///
/// A key alone says so for pgclone's keys, but for those an earlier release wrote with the name
/// sanitised (`rel_col/` can hold `rel.col`'s dumps), and for django-pgclone 2+'s (they name a
/// Django alias). For those, the first bytes of the object are read: pgclone's metadata frame, or
/// a plain archive's header, name the database. `restore`/`verify` by name and `prune` read every
/// dump they would act on, so that a dump copied under another database's key is never taken for
/// one of that database's; `ls` reads only where the key cannot tell. Reads go several at once.
package struct DumpCatalog: Sendable {
    package let storage: any StorageBackend
    package var logger: Logger
    /// Objects read at once while finding out what dumps say.
    package var concurrency = 8

    package init(storage: any StorageBackend, logger: Logger) {
        self.storage = storage
        self.logger = logger
    }

    /// Dumps newest first, of `database` and made with dump config `config` only, where given.
    /// A dump whose database is not known (``StoredDump/databaseKnown``) is of no database.
    package func dumps(of database: String? = nil, config: String? = nil) async throws -> [StoredDump] {
        let listed = try await storage.list().filter { dump in database.map { Self.mayBe(dump, of: $0) } ?? true }
        let resolved = try await resolve(listed) { !$0.key.namesDatabase }
        return resolved.filter { dump in
            (database.map { dump.databaseKnown && dump.database == $0 } ?? true)
                && (config.map { dump.isMade(with: $0) } ?? true)
        }
    }

    /// For `prune`: every dump it may count and delete, of `database` and made with `config` where
    /// given, newest first, each read (``whyNotPrunable(_:)``); and the objects it must leave alone
    /// among those it considered (under `database`'s keys, where given), with why.
    package func prunable(
        of database: String?,
        config: String?
    ) async throws -> (dumps: [StoredDump], leftAlone: [(dump: StoredDump, reason: String)]) {
        let listed = try await storage.list().filter { dump in database.map { Self.mayBe(dump, of: $0) } ?? true }
        var dumps: [StoredDump] = []
        var leftAlone: [(dump: StoredDump, reason: String)] = []
        for dump in try await resolve(listed, where: { _ in true }) {
            let madeWithConfig = config.map { dump.isMade(with: $0) } ?? true
            if let reason = Self.whyNotPrunable(dump) {
                // What is no dump was made with no config: said of whatever config was asked.
                if madeWithConfig || dump.notADump != nil { leftAlone.append((dump, reason)) }
            } else if madeWithConfig && (database.map { dump.database == $0 } ?? true) {
                dumps.append(dump)
            }
        }
        return (dumps, leftAlone)
    }

    /// Why `prune` must leave `dump` alone, or `nil` if it may count and delete it: it must be a
    /// dump (not an empty or foreign object), of a known database, and not say it is another
    /// database's than its key names.
    private static func whyNotPrunable(_ dump: StoredDump) -> String? {
        if let notADump = dump.notADump { return "it is not a dump (\(notADump))" }
        if !dump.databaseKnown {
            return "which database it is of is not known (its key does not say surely, and the object does not say)"
        }
        if dump.contradictsKey {
            return "it is named for \"\(dump.key.database)\" but is a dump of \"\(dump.database)\""
        }
        return nil
    }

    /// The newest dump of `database` made with `config` (any config, if `nil`), from any tool's
    /// layout. The dump's own word on its database is checked: one that says it is another
    /// database's (copied under this one's key) is passed over, and so is an object that is no
    /// dump (empty, say, as a django-pgclone killed mid-way left it).
    package func newest(of database: String, config: String?) async throws -> StoredDump? {
        try await newest(of: database, config: config).dump
    }

    /// The newest dump, and the first dump passed over because it says it is another database's.
    private func newest(
        of database: String,
        config: String?
    ) async throws -> (dump: StoredDump?, passedOver: StoredDump?) {
        var passedOver: StoredDump?
        for candidate in try await storage.list() where Self.mayBe(candidate, of: database) {
            let dump = try await resolve(candidate)
            if let notADump = dump.notADump {
                logger.warning("passed over \(dump.key): it is not a dump (\(notADump))")
                continue
            }
            guard dump.databaseKnown, dump.database == database else {
                logger.debug("passed over \(dump.key): it is a dump of \"\(dump.database)\"")
                if dump.key.database == database && dump.databaseKnown && passedOver == nil { passedOver = dump }
                continue
            }
            if config.map(dump.isMade(with:)) ?? true { return (dump, passedOver) }
        }
        return (nil, passedOver)
    }

    /// The dump `source` names: the one under its key, or the newest of its database (made with
    /// `config`, if given). Throws `objectNotFound` if there is none, and `invalidConfiguration`
    /// for a database on the server (`:NAME`), which is no dump in storage.
    package func dump(for source: RestoreSource, config: String?) async throws -> StoredDump {
        switch source {
        case .key(let key):
            return try await dump(key)
        case .database(let name):
            return try await newestOrThrow(of: name, config: config)
        case .local(let name):
            throw PGCloneError(.invalidConfiguration, ":\(name) is a database on the server, not a dump in storage")
        }
    }

    /// The dump stored under `key`; throws `objectNotFound` if there is none.
    package func dump(_ key: DumpKey) async throws -> StoredDump {
        guard let dump = try await storage.find(key) else {
            throw PGCloneError(.objectNotFound, "no dump \(key) in \(storage.location); `pgclone ls` lists them")
        }
        return dump
    }

    /// ``newest(of:config:)``, or an `objectNotFound` error saying what there is to pick from. With
    /// no `config`, logs which config the dump it picked was made with.
    package func newestOrThrow(of database: String, config: String?) async throws -> StoredDump {
        let (found, passedOver) = try await newest(of: database, config: config)
        guard let newest = found else {
            let made = config.map { " made with dump config \"\($0)\"" } ?? ""
            let hint =
                if await storage.locationIsMissing {
                    "\(storage.location) does not exist (a dump makes it); is --storage-location right?"
                } else if let passedOver {
                    """
                    \(passedOver.key) is named for it but is a dump of \"\(passedOver.database)\"; restore it by \
                    its key if that is what you want
                    """
                } else if config == nil {
                    "`pgclone ls --only-db-names` lists the databases"
                } else {
                    "`pgclone ls \(database)` lists its dumps"
                }
            throw PGCloneError(
                .objectNotFound,
                "no dumps of database \"\(database)\"\(made) in \(storage.location); \(hint)"
            )
        }
        // Not for a key an earlier release sanitised (`rel_col/` holding `rel.col`'s): that is
        // how such keys are, not something to look into.
        if let passedOver, passedOver.contradictsKey {
            logger.warning(
                """
                passed over \(passedOver.key): it is named for \"\(database)\" but is a dump of \
                \"\(passedOver.database)\"
                """
            )
        }
        if config == nil {
            logger.info(
                """
                the newest dump of \"\(database)\" is \(newest.key), made with dump config \"\(newest.config)\" \
                (--dump-config picks the newest of one)
                """
            )
        }
        return newest
    }

    /// Whether `dump` could be of `database`, before reading it.
    private static func mayBe(_ dump: StoredDump, of database: String) -> Bool {
        if dump.key.namesDatabase { return dump.key.database == database }
        switch dump.key.layout {
        case .pgclone: return dump.key.database == database || dump.key.database == KeySegment.sanitized(database)
        case .djangoPGClone1, .djangoPGClone2: return true
        }
    }

    /// `dumps`, with those `needsReading` says read, `concurrency` at a time, in the same order.
    private func resolve(_ dumps: [StoredDump], where needsReading: (StoredDump) -> Bool) async throws -> [StoredDump] {
        var result = dumps
        let indices = dumps.indices.filter { needsReading(dumps[$0]) }
        try await withThrowingTaskGroup(of: (Int, StoredDump).self) { group in
            var next = indices.makeIterator()
            for _ in 0..<concurrency {
                guard let index = next.next() else { break }
                group.addTask { (index, try await resolve(dumps[index])) }
            }
            while let (index, dump) = try await group.next() {
                result[index] = dump
                if let index = next.next() { group.addTask { (index, try await resolve(dumps[index])) } }
            }
        }
        return result
    }

    /// `dump` with what its first bytes say: the database and config they name, or that it is no
    /// dump. One that cannot be read (gone since it was listed, or archived to a storage class
    /// that must be restored first) is as its key says, with a warning.
    private func resolve(_ dump: StoredDump) async throws -> StoredDump {
        var resolved = dump
        do {
            var length = DumpHead.initialLength
            var bytes = try await storage.readHead(dump.key, length: length)
            var parsed = DumpHead.parse(bytes)
            if case .needsBytes(let count) = parsed {
                length = count
                bytes = try await storage.readHead(dump.key, length: count)
                parsed = DumpHead.parse(bytes)
            }
            if case .unrecognized(let description) = DumpFormat.sniff(bytes, atEnd: bytes.count < length) {
                resolved.notADump = description
                resolved.databaseKnown = false
                return resolved
            }
            guard case .head(let head) = parsed else { return resolved }
            if let database = head.database {
                resolved.database = database
                resolved.databaseKnown = true
            }
            if let config = head.metadata?.dumpConfig {
                resolved.config = config
                resolved.configKnown = true
            }
        } catch let error as PGCloneError where error.code == .objectNotFound {
            logger.warning("could not read \(dump.key) to see which database it is of: \(error.message)")
        }
        return resolved
    }
}
