import Glibc
import NIOCore
package import PGCloneStreams

/// `restore --jobs N`: the decompressed archive in a temporary file, which `pg_restore -j` needs
/// (it seeks; stdin cannot). Made in TMPDIR after checking for room, and removed when the restore
/// ends, also when it fails. File I/O blocks, so the actor runs on its own dispatch queue.
package actor ArchiveSpool {
    private let executor = DispatchQueueExecutor(label: "pgclone.spool")
    package nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    package nonisolated let directory: String
    /// Where the archive is, for pg_restore: a name of its own, created with O_EXCL.
    package nonisolated let path: String
    private var descriptor: Int32 = -1
    private var exists = false

    private init(directory: String) {
        self.directory = directory
        path = "\(directory)/pgclone-spool-\(getpid())-\(UInt64.random(in: 0...UInt64.max).hexString).dump"
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
        guard statvfs(directory, &stats) == 0 else { throw failure("cannot use TMPDIR \(directory)") }
        let free = Int(stats.f_bavail) * Int(stats.f_frsize)
        guard free >= minimumFree else {
            throw PGCloneError(
                .storageFailed,
                "TMPDIR \(directory) has \(ByteCount(bytes: free)) free, less than the dump's \(ByteCount(bytes: minimumFree)) "
                    + "before decompression; --jobs needs room for the whole archive: set TMPDIR to a larger disk, or restore without --jobs"
            )
        }
        descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw failure("cannot create a spool file in TMPDIR \(directory)") }
        exists = true
    }

    /// Writes all of `stream` into the file and closes it; returns the bytes written.
    package func write(from stream: ByteStream) async throws -> Int {
        var written = 0
        for try await chunk in stream {
            guard writeAll(descriptor, chunk) else {
                if errno == ENOSPC {
                    throw PGCloneError(
                        .storageFailed,
                        "TMPDIR \(directory) ran out of space after \(ByteCount(bytes: written)) of the archive; "
                            + "--jobs needs room for the whole archive: set TMPDIR to a larger disk, or restore without --jobs"
                    )
                }
                throw failure("cannot write the spool file \(path)")
            }
            written += chunk.readableBytes
        }
        let result = Glibc.close(descriptor)
        descriptor = -1
        guard result == 0 else { throw failure("cannot write the spool file \(path)") }
        return written
    }

    /// Closes and deletes the file; what it held is not needed once pg_restore has ended.
    package func remove() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
        if exists { unlink(path) }
        exists = false
    }

    private nonisolated func failure(_ what: String) -> PGCloneError {
        PGCloneError(.storageFailed, "\(what): \(String(cString: strerror(errno)))")
    }
}

extension UInt64 {
    fileprivate var hexString: String { String(self, radix: 16) }
}
