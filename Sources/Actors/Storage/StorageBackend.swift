package import PGCloneStreams

/// A dump in storage.
package struct StoredDump: Sendable, Hashable {
    package var key: DumpKey
    /// Size of the stored object in bytes.
    package var size: Int
    /// The source database's name: what the dump itself says, once ``DumpCatalog`` has read it,
    /// else what its key says.
    package var database: String
    /// Whether ``database`` is known: from the dump, or from a key that names it surely
    /// (``DumpKey/namesDatabase``). Not for a dump under an earlier release's sanitised prefix or
    /// a django-pgclone 2+ key that could not be read or names no database.
    package var databaseKnown: Bool
    /// The dump config it was made with: the metadata's, where it says, else the key's.
    package var config: String
    /// Whether ``config`` is known: not for a pgclone key whose config segment an earlier release
    /// could have sanitised (`anon_v2` for `anon.v2`) when the dump does not say it.
    package var configKnown: Bool
    /// Why the object is not a dump, when its first bytes were read and are not one (empty, text).
    package var notADump: String?

    package init(key: DumpKey, size: Int) {
        self.key = key
        self.size = size
        self.database = key.database
        self.databaseKnown = key.namesDatabase
        self.config = key.config
        self.configKnown = !(key.layout == .pgclone && KeySegment.isLiteral(key.config) && key.config.contains("_"))
    }

    /// Whether the dump says it is of another database than its key could be for: a dump copied
    /// under another database's key. A key that does not name its database surely (`rel_col/`,
    /// where an earlier release put `rel.col`'s dumps) can be for the databases it is the
    /// sanitised name of, and no other: a restore of the dump's database does not look there.
    package var contradictsKey: Bool {
        switch key.layout {
        case .pgclone:
            database != key.database && (key.namesDatabase || KeySegment.sanitized(database) != key.database)
        case .djangoPGClone1: database != key.database
        case .djangoPGClone2: false
        }
    }

    /// Whether it was made with dump config `name` (`anon.v2` also matches an earlier release's
    /// `anon_v2` that says no better).
    package func isMade(with name: String) -> Bool {
        config == name || (!configKnown && config == KeySegment.sanitized(name))
    }

    /// Dumps of one database made with one dump config (and, for django-pgclone 2+, on one
    /// instance): restore picks the newest dump of one, retention counts per series.
    package struct Series: Hashable, Sendable, Comparable {
        package var database: String
        package var config: String
        /// django-pgclone 2+'s instance (the host name): prod's and staging's dumps of one
        /// database are two series.
        package var instance: String?

        package static func < (lhs: Series, rhs: Series) -> Bool {
            (lhs.database, lhs.config, lhs.instance ?? "") < (rhs.database, rhs.config, rhs.instance ?? "")
        }
    }

    package var series: Series { Series(database: database, config: config, instance: key.instance) }
}

/// Where dumps live: a local directory, or (a later stage) an S3 prefix.
///
/// Writes are all-or-nothing: a dump is visible under its key only once it is complete, and a
/// failed or cancelled write leaves nothing that ``list(database:)`` or ``read(_:into:)`` would find.
package protocol StorageBackend: Sendable {
    /// The location as the user wrote it, for messages: `.pgclone/`, `s3://bucket/prefix`.
    var location: String { get }

    /// Whether ``write(_:from:)`` gathers what it reads into buffers of its own (S3's parts), so that
    /// the stream feeding it needs little room.
    var buffersWrites: Bool { get }

    /// Whether the location is a directory that does not exist (no dump was made there: a typo, or
    /// none yet), to say so when it holds no dumps; `false` where it cannot be told (S3).
    var locationIsMissing: Bool { get async }

    /// Every dump under the location whose key has one of the layouts ``DumpKey`` reads, newest
    /// first, as its key names it (``DumpCatalog`` finds out what the dumps say).
    func list() async throws -> [StoredDump]

    /// The dump stored under `key`, or `nil`.
    func find(_ key: DumpKey) async throws -> StoredDump?

    /// Stores `stream` under `key`; publishes it only if the stream ends cleanly.
    /// - Returns: the number of bytes stored.
    func write(_ key: DumpKey, from stream: ByteStream) async throws -> Int

    /// The first `length` bytes of the object stored under `key` (all of it, if it is shorter).
    func readHead(_ key: DumpKey, length: Int) async throws -> [UInt8]

    /// The last `length` bytes of the object stored under `key` (all of it, if it is shorter): where
    /// a dump keeps its ``ArchiveIndex``.
    func readTail(_ key: DumpKey, length: Int) async throws -> [UInt8]

    /// Streams the object stored under `key` into `output`, and finishes `output`.
    /// - Returns: the number of bytes read.
    func read(_ key: DumpKey, into output: ByteStream.Source) async throws -> Int

    /// Deletes the dump stored under `key` (`prune`).
    func delete(_ key: DumpKey) async throws

    /// Removes what dumps killed mid-way left (a local dump's hidden partial file), if no running
    /// pgclone still writes it; those of `database` (a name, not a key segment) only, if given.
    /// - Returns: what was removed, for the log.
    func removeAbandonedPartials(database: String?) async throws -> [String]
}

extension StorageBackend {
    package var buffersWrites: Bool { false }
    package var locationIsMissing: Bool { get async { false } }

    /// Nothing to do where a failed write leaves nothing (S3 aborts its uploads).
    package func removeAbandonedPartials(database: String?) async throws -> [String] { [] }
}
