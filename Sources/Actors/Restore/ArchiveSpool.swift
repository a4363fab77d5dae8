import Foundation
import Glibc
package import NIOCore
package import PGCloneStreams

/// `restore --jobs N`: the decompressed archive in a temporary file, which `pg_restore -j` needs
/// (it seeks; stdin cannot). Made in TMPDIR after checking for room, and removed when the restore
/// ends, also when it fails. A pgclone killed with SIGKILL cannot remove it: the file is locked
/// (`flock`) while its restore runs, and the next spool made in the same directory removes the
/// unlocked ones, with the `-L` lists beside them. File I/O blocks, so the actor runs on its own
/// dispatch queue.
package actor ArchiveSpool {
    private let executor = DispatchQueueExecutor(label: "pgclone.spool")
    package nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    package nonisolated let directory: String
    /// Where the archive is, for pg_restore: a name of its own, created with O_EXCL.
    package nonisolated let path: String
    private var descriptor: Int32 = -1
    /// Holds the file's lock for as long as the restore runs (the writing descriptor closes once
    /// the archive is written).
    private var lock: Int32 = -1
    private var exists = false
    /// Spool files of killed restores this one removed.
    package private(set) var removedAbandoned: [String] = []
    static let prefix = "pgclone-spool-"

    private init(directory: String) {
        self.directory = directory
        path = "\(directory)/\(Self.prefix)\(getpid())-\(UInt64.random(in: 0...UInt64.max).hexString).dump"
    }

    /// A new, empty spool file in `directory`, which must have at least `minimumFree` bytes free
    /// (the stored, compressed size: the archive is larger, so this is a floor, and running out of
    /// room later fails as clearly).
    package static func create(in directory: String, minimumFree: Int) async throws -> ArchiveSpool {
        let spool = ArchiveSpool(directory: directory)
        try await spool.open(minimumFree: minimumFree)
        return spool
    }

    private func open(minimumFree: Int) throws {
        var stats = statvfs()
        guard statvfs(directory, &stats) == 0 else {
            throw PGCloneError.storageFailed("cannot use TMPDIR \(directory)")
        }
        // Read-only (a container's read-only root): its free space would mislead.
        guard stats.f_flag & UInt(ST_RDONLY) == 0, access(directory, W_OK | X_OK) == 0 else {
            throw PGCloneError(
                .storageFailed,
                """
                TMPDIR \(directory) is not writable, and --jobs spools the archive there: set TMPDIR to a \
                writable disk with room for the whole archive, or restore without --jobs
                """
            )
        }
        let free = Int(stats.f_bavail) * Int(stats.f_frsize)
        guard free >= minimumFree else {
            throw PGCloneError(
                .storageFailed,
                """
                TMPDIR \(directory) has \(ByteCount(bytes: free)) free, less than the dump's \
                \(ByteCount(bytes: minimumFree)) 
                """
                    + """
                    before decompression; --jobs needs room for the whole archive: set TMPDIR to a larger disk, \
                    or restore without --jobs
                    """
            )
        }
        removedAbandoned = removeAbandoned()
        descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw PGCloneError.storageFailed("cannot create a spool file in TMPDIR \(directory)")
        }
        exists = true
        lock = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard lock >= 0, flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            let error = PGCloneError.storageFailed("cannot lock the spool file \(path)")
            remove()
            throw error
        }
    }

    /// Removes the spool files in the directory that no restore holds (their pgclone was killed),
    /// and the `-L` lists of spools that are gone; returns their paths.
    private func removeAbandoned() -> [String] {
        guard let stream = opendir(directory) else { return [] }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix(Self.prefix) { names.append(name) }
        }
        closedir(stream)
        var removed: [String] = []
        for name in names where name.hasSuffix(".dump") {
            let file = "\(directory)/\(name)"
            let held = Glibc.open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard held >= 0 else { continue }
            defer { Glibc.close(held) }
            var stats = stat()
            guard fstat(held, &stats) == 0, stats.st_uid == getuid(), (stats.st_mode & S_IFMT) == S_IFREG,
                flock(held, LOCK_EX | LOCK_NB) == 0
            else { continue }
            if unlink(file) == 0 { removed.append(file) }
        }
        for name in names where name.hasSuffix(".list") {
            let file = "\(directory)/\(name)"
            guard let end = name.range(of: ".dump.", options: .backwards),
                access("\(directory)/\(name[..<end.lowerBound]).dump", F_OK) != 0
            else {
                continue
            }
            if unlink(file) == 0 { removed.append(file) }
        }
        return removed
    }

    /// Writes all of `stream` into the file and closes it; returns the bytes written.
    /// `beforeWriting` is given the stream's first chunk (`nil` if it has none) before anything is
    /// written: what can fail before the restore goes on fails before the whole archive is spooled.
    package func write(
        from stream: ByteStream,
        beforeWriting: @Sendable (ByteBuffer?) async throws -> Void = { _ in }
    ) async throws -> Int {
        var written = 0
        var iterator = stream.makeAsyncIterator()
        var next = try await iterator.next()
        try await beforeWriting(next)
        while let chunk = next {
            guard writeAll(descriptor, chunk) else {
                if errno == ENOSPC {
                    throw PGCloneError(
                        .storageFailed,
                        "TMPDIR \(directory) ran out of space after \(ByteCount(bytes: written)) of the archive; "
                            + """
                            --jobs needs room for the whole archive: set TMPDIR to a larger disk, or restore \
                            without --jobs
                            """
                    )
                }
                throw PGCloneError.storageFailed("cannot write the spool file \(path)")
            }
            written += chunk.readableBytes
            next = try await iterator.next()
        }
        let result = Glibc.close(descriptor)
        descriptor = -1
        guard result == 0 else { throw PGCloneError.storageFailed("cannot write the spool file \(path)") }
        return written
    }

    /// Closes and deletes the file; what it held is not needed once pg_restore has ended.
    package func remove() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
        if exists { unlink(path) }
        exists = false
        if lock >= 0 { Glibc.close(lock) }
        lock = -1
    }

}

extension UInt64 {
    fileprivate var hexString: String { String(self, radix: 16) }
}
