package import PGCloneStreams

/// A dump in storage.
package struct StoredDump: Sendable, Hashable {
    package var key: DumpKey
    /// Size of the stored object in bytes.
    package var size: Int

    package init(key: DumpKey, size: Int) {
        self.key = key
        self.size = size
    }
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

    /// Dumps, newest first; only those of `database` (a sanitised name) if given.
    func list(database: String?) async throws -> [StoredDump]

    /// The dump stored under `key`, or `nil`.
    func find(_ key: DumpKey) async throws -> StoredDump?

    /// Stores `stream` under `key`; publishes it only if the stream ends cleanly.
    /// - Returns: the number of bytes stored.
    func write(_ key: DumpKey, from stream: ByteStream) async throws -> Int

    /// Streams the object stored under `key` into `output`, and finishes `output`.
    /// - Returns: the number of bytes read.
    func read(_ key: DumpKey, into output: ByteStream.Source) async throws -> Int

    /// Deletes the dump stored under `key` (`prune`).
    func delete(_ key: DumpKey) async throws

    /// Removes what dumps killed mid-way left (a local dump's hidden partial file), if no running
    /// pgclone still writes it; those of `database` only, if given.
    /// - Returns: what was removed, for the log.
    func removeAbandonedPartials(database: String?) async throws -> [String]
}

extension StorageBackend {
    package var buffersWrites: Bool { false }

    /// Nothing to do where a failed write leaves nothing (S3 aborts its uploads).
    package func removeAbandonedPartials(database: String?) async throws -> [String] { [] }
}
