import Glibc
package import Logging
import NIOCore
package import PGCloneStreams

/// Dumps in a local directory (the default `.pgclone/`), keys as paths below it.
///
/// A dump is written to a hidden temporary file in its final directory, fsynced, then linked to
/// its key (which never replaces an existing dump) and the directory fsynced; on any failure the
/// temporary file is removed. The writer holds an exclusive `flock` on it, so that a file left by a
/// pgclone that was killed (SIGKILL, out of memory) can be told from one being written, and is
/// removed by the next dump of the database or by `prune`.
///
/// Nothing is read, written or deleted outside the root: below it, every directory is opened
/// relative to its parent with `O_NOFOLLOW`, so a symbolic link is never followed (listing skips
/// one with a warning; a key through one is refused). The root itself may be a link. File I/O
/// blocks, so the actor runs on its own dispatch queue.
package actor LocalDiskStorage: StorageBackend {
    private let executor = DispatchQueueExecutor(label: "pgclone.storage.local")
    package nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    package nonisolated let location: String
    private nonisolated let root: String
    /// Bytes per read, and so per chunk sent downstream.
    private let readChunkSize: Int
    private let logger: Logger?

    package init(location: String, readChunkSize: Int = 128 << 10, logger: Logger? = nil) {
        self.location = location
        var root = location
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        self.root = root.isEmpty ? "." : root
        self.readChunkSize = readChunkSize
        self.logger = logger
    }

    /// Refuses a location that exists but is not a directory (or a link to one).
    package nonisolated func checkLocation() throws(PGCloneError) {
        var info = stat()
        if stat(root, &info) != 0 && errno == ENOENT && lstat(root, &info) == 0 {
            throw PGCloneError(
                .invalidConfiguration,
                """
                the storage location \(location) is a symbolic link to something that does not exist; make its \
                target, or give another directory
                """
            )
        }
        if stat(root, &info) == 0 && (info.st_mode & S_IFMT) != S_IFDIR {
            throw PGCloneError(
                .invalidConfiguration,
                "the storage location \(location) is a file, not a directory; give a directory or s3://bucket/prefix"
            )
        }
    }

    package var locationIsMissing: Bool {
        var info = stat()
        return lstat(root, &info) != 0 && errno == ENOENT
    }

    // MARK: Paths below the root

    /// The root, opened; `nil` if it does not exist yet (it holds no dumps).
    private func openRoot() throws -> Directory? {
        try checkLocation()
        let descriptor = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw PGCloneError.storageFailed("cannot open the storage location \(location)")
        }
        return Directory(descriptor: descriptor, path: root)
    }

    /// A directory below `parent`, not through a symbolic link; `nil` if it does not exist.
    private func openDirectory(_ name: String, in parent: Directory) throws -> Directory? {
        let descriptor = openat(parent.descriptor, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        let path = "\(parent.path)/\(name)"
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            if errno == ELOOP || (errno == ENOTDIR && isSymbolicLink(name, in: parent)) { throw Self.linkRefused(path) }
            if errno == ENOTDIR { return nil }
            throw PGCloneError.storageFailed("cannot open \(path)")
        }
        return Directory(descriptor: descriptor, path: path)
    }

    /// The directory holding `key`'s file, and the file's name; `nil` if a directory on the way
    /// does not exist. With `creating`, missing directories are made (mode 0700).
    private func directory(of key: DumpKey, creating: Bool = false) throws -> (Directory, String)? {
        var parts = key.path.split(separator: "/").map(String.init)
        let file = parts.removeLast()
        if creating { try makeDirectory(root) }
        guard var directory = try openRoot() else { return nil }
        for part in parts {
            if creating, mkdirat(directory.descriptor, part, 0o700) != 0, errno != EEXIST {
                directory.close()
                throw PGCloneError.storageFailed("cannot create directory \(directory.path)/\(part)")
            }
            let next: Directory?
            do {
                next = try openDirectory(part, in: directory)
            } catch {
                directory.close()
                throw error
            }
            directory.close()
            guard let next else { return nil }
            directory = next
        }
        return (directory, file)
    }

    private func isSymbolicLink(_ name: String, in directory: Directory) -> Bool {
        var info = stat()
        return fstatat(directory.descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0
            && (info.st_mode & S_IFMT) == S_IFLNK
    }

    private static func linkRefused(_ path: String) -> PGCloneError {
        PGCloneError(
            .invalidConfiguration,
            """
            \(path) is a symbolic link; pgclone does not follow links below the storage location, so that nothing \
            outside it is read, written or deleted
            """
        )
    }

    // MARK: Listing

    package func list() throws -> [StoredDump] {
        guard let root = try openRoot() else { return [] }
        var dumps: [StoredDump] = []
        // pgclone's and django-pgclone 1.x's keys are two levels deep, django-pgclone 2+'s four.
        func walk(_ directory: Directory, prefix: String, depth: Int) throws {
            defer { directory.close() }
            for (name, kind) in try entries(of: directory) {
                let key = prefix.isEmpty ? name : "\(prefix)/\(name)"
                switch kind {
                case .directory where depth < 3:
                    if let next = try openDirectory(name, in: directory) {
                        try walk(next, prefix: key, depth: depth + 1)
                    }
                case .file(let size) where depth == 1 || depth == 3:
                    if let parsed = DumpKey(parsing: key) { dumps.append(StoredDump(key: parsed, size: size)) }
                case .symbolicLink:
                    logger?.warning(
                        """
                        skipped \(directory.path)/\(name): a symbolic link; pgclone does not follow links below the \
                        storage location
                        """
                    )
                default:
                    continue
                }
            }
        }
        try walk(root, prefix: "", depth: 0)
        return dumps.sorted { $0.key > $1.key }
    }

    private enum EntryKind {
        case directory
        case file(size: Int)
        case symbolicLink, other
    }

    /// The entries of `directory` but hidden ones (temporary files), with what they are (links
    /// not followed).
    private func entries(of directory: Directory, hidden: Bool = false) throws -> [(String, EntryKind)] {
        let copy = dup(directory.descriptor)
        guard copy >= 0, let handle = fdopendir(copy) else {
            if copy >= 0 { Glibc.close(copy) }
            throw PGCloneError.storageFailed("cannot list \(directory.path)")
        }
        defer { closedir(handle) }
        var result: [(String, EntryKind)] = []
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            guard name != "." && name != ".." && (hidden || !name.hasPrefix(".")) else { continue }
            var info = stat()
            guard fstatat(directory.descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR: result.append((name, .directory))
            case S_IFREG: result.append((name, .file(size: Int(info.st_size))))
            case S_IFLNK: result.append((name, .symbolicLink))
            default: result.append((name, .other))
            }
        }
        return result
    }

    package func find(_ key: DumpKey) throws -> StoredDump? {
        guard let (directory, file) = try directory(of: key) else { return nil }
        defer { directory.close() }
        var info = stat()
        guard fstatat(directory.descriptor, file, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        if (info.st_mode & S_IFMT) == S_IFLNK { throw Self.linkRefused("\(directory.path)/\(file)") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return StoredDump(key: key, size: Int(info.st_size))
    }

    // MARK: Writing

    package func write(_ key: DumpKey, from stream: ByteStream) async throws -> Int {
        guard let (directory, file) = try directory(of: key, creating: true) else {
            throw PGCloneError.storageFailed("cannot create the directories of \(key) in \(location)")
        }
        defer { directory.close() }
        let temporary = ".\(file).\(getpid()).partial"
        let temporaryPath = "\(directory.path)/\(temporary)"
        let descriptor = openat(
            directory.descriptor,
            temporary,
            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
            0o600
        )
        guard descriptor >= 0 else { throw PGCloneError.storageFailed("cannot create \(temporaryPath)") }
        // Released when the descriptor is closed, or when the process dies.
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(descriptor)
            unlinkat(directory.descriptor, temporary, 0)
            throw PGCloneError.storageFailed("cannot lock \(temporaryPath)")
        }
        var isOpen = true
        var published = false
        defer {
            if isOpen { Glibc.close(descriptor) }
            if !published { unlinkat(directory.descriptor, temporary, 0) }
        }
        var written = 0
        for try await chunk in stream {
            guard writeAll(descriptor, chunk) else { throw PGCloneError.storageFailed("cannot write \(temporaryPath)") }
            written += chunk.readableBytes
        }
        guard fsync(descriptor) == 0 else { throw PGCloneError.storageFailed("cannot flush \(temporaryPath) to disk") }
        isOpen = false
        guard Glibc.close(descriptor) == 0 else { throw PGCloneError.storageFailed("cannot write \(temporaryPath)") }
        // link(2) never replaces an existing file, unlike rename(2).
        guard linkat(directory.descriptor, temporary, directory.descriptor, file, 0) == 0 else {
            if errno == EEXIST {
                throw PGCloneError(.storageFailed, "a dump named \(key) already exists in \(location)")
            }
            throw PGCloneError.storageFailed("cannot publish \(directory.path)/\(file)")
        }
        published = true
        unlinkat(directory.descriptor, temporary, 0)
        guard fsync(directory.descriptor) == 0 else {
            throw PGCloneError.storageFailed("cannot flush \(directory.path) to disk")
        }
        return written
    }

    /// Hidden `.partial` files that no process holds locked: their pgclone is gone. In the
    /// directory of `database`'s keys only, if given.
    package func removeAbandonedPartials(database: String?) throws -> [String] {
        guard let root = try openRoot() else { return [] }
        defer { root.close() }
        let names =
            try database.map { [KeySegment.encode($0)] }
            ?? entries(of: root).compactMap { name, kind in
                if case .directory = kind { return name }
                return nil
            }
        var removed: [String] = []
        for name in names {
            guard let directory = try? openDirectory(name, in: root) else { continue }
            defer { directory.close() }
            for (file, kind) in try entries(of: directory, hidden: true)
            where file.hasPrefix(".") && file.hasSuffix(".partial") {
                guard case .file = kind else { continue }
                let descriptor = openat(directory.descriptor, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                guard descriptor >= 0 else { continue }
                defer { Glibc.close(descriptor) }
                guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else { continue }
                if unlinkat(directory.descriptor, file, 0) == 0 { removed.append("\(directory.path)/\(file)") }
            }
        }
        return removed
    }

    private func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw PGCloneError.storageFailed("cannot create directory \(path)")
        }
    }

    package func delete(_ key: DumpKey) throws {
        guard let (directory, file) = try directory(of: key) else { return }
        defer { directory.close() }
        if isSymbolicLink(file, in: directory) { throw Self.linkRefused("\(directory.path)/\(file)") }
        guard unlinkat(directory.descriptor, file, 0) == 0 || errno == ENOENT else {
            throw PGCloneError.storageFailed("cannot delete \(directory.path)/\(file)")
        }
    }

    // MARK: Reading

    /// The dump's file, opened for reading without following a link.
    private func openForReading(_ key: DumpKey) throws -> (descriptor: Int32, path: String) {
        guard let (directory, file) = try directory(of: key) else {
            throw PGCloneError(.objectNotFound, "no dump \(key) in \(location)")
        }
        defer { directory.close() }
        let path = "\(directory.path)/\(file)"
        let descriptor = openat(directory.descriptor, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { throw PGCloneError(.objectNotFound, "no dump \(key) in \(location)") }
            if errno == ELOOP { throw Self.linkRefused(path) }
            throw PGCloneError.storageFailed("cannot open \(path)")
        }
        return (descriptor, path)
    }

    package func readHead(_ key: DumpKey, length: Int) throws -> [UInt8] {
        let (descriptor, path) = try openForReading(key)
        defer { Glibc.close(descriptor) }
        return try read(descriptor, path, at: 0, length: length)
    }

    package func readTail(_ key: DumpKey, length: Int) throws -> [UInt8] {
        let (descriptor, path) = try openForReading(key)
        defer { Glibc.close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw PGCloneError.storageFailed("cannot read \(path)") }
        let size = Int(status.st_size)
        return try read(descriptor, path, at: max(0, size - length), length: min(length, size))
    }

    /// Up to `length` bytes at `offset` (fewer at the end of the file).
    private func read(_ descriptor: Int32, _ path: String, at offset: Int, length: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: length)
        var total = 0
        while total < length {
            let count = bytes.withUnsafeMutableBytes {
                pread(descriptor, $0.baseAddress! + total, length - total, off_t(offset + total))
            }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw PGCloneError.storageFailed("cannot read \(path)") }
            if count == 0 { break }
            total += count
        }
        return Array(bytes.prefix(total))
    }

    package func read(_ key: DumpKey, into output: ByteStream.Source) async throws -> Int {
        try await output.finishing {
            let (descriptor, file) = try openForReading(key)
            defer { Glibc.close(descriptor) }
            let allocator = ByteBufferAllocator()
            var total = 0
            while true {
                var chunk = allocator.buffer(capacity: readChunkSize)
                var failed = false
                let count = chunk.writeWithUnsafeMutableBytes(minimumWritableBytes: readChunkSize) { buffer in
                    var result: Int
                    repeat {
                        result = Glibc.read(descriptor, buffer.baseAddress, readChunkSize)
                    } while result < 0 && errno == EINTR
                    failed = result < 0
                    return max(result, 0)
                }
                if failed { throw PGCloneError.storageFailed("cannot read \(file)") }
                if count == 0 { return total }
                total += count
                try await output.write(chunk)
            }
        }
    }

}

/// An open directory below (or at) the storage root.
private struct Directory {
    let descriptor: Int32
    let path: String

    func close() { Glibc.close(descriptor) }
}
