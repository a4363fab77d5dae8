import Glibc
import NIOCore
package import PGCloneStreams

/// Dumps in a local directory (the default `.pgclone/`): `{root}/{database}/{timestamp}.{config}.dump`.
///
/// A dump is written to a hidden temporary file in its final directory, fsynced, then linked to
/// its key (which never replaces an existing dump) and the directory fsynced; on any failure the
/// temporary file is removed. The writer holds an exclusive `flock` on it, so that a file left by a
/// pgclone that was killed (SIGKILL, out of memory) can be told from one being written, and is
/// removed by the next dump of the database or by `prune`. File I/O blocks, so the actor runs on
/// its own dispatch queue.
package actor LocalDiskStorage: StorageBackend {
    private let executor = DispatchQueueExecutor(label: "pgclone.storage.local")
    package nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    package nonisolated let location: String
    private nonisolated let root: String
    /// Bytes per read, and so per chunk sent downstream.
    private let readChunkSize: Int

    package init(location: String, readChunkSize: Int = 128 << 10) {
        self.location = location
        var root = location
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        self.root = root.isEmpty ? "." : root
        self.readChunkSize = readChunkSize
    }

    private func path(of key: DumpKey) -> String {
        "\(root)/\(key.database)/\(key.timestamp).\(key.config).dump"
    }

    // MARK: Listing

    package func list(database: String?) throws -> [StoredDump] {
        try checkRoot()
        let databases = try database.map { [$0] } ?? directoryEntries(root).filter { isDirectory("\(root)/\($0)") }
        var dumps: [StoredDump] = []
        for name in databases {
            for file in try directoryEntries("\(root)/\(name)") {
                guard let key = DumpKey(parsing: "\(name)/\(file)"), let size = fileSize(path(of: key)) else { continue }
                dumps.append(StoredDump(key: key, size: size))
            }
        }
        return dumps.sorted { $0.key > $1.key }
    }

    /// A location that does not exist holds no dumps yet; one that is a file is a mistake.
    private func checkRoot() throws {
        var info = stat()
        if stat(root, &info) == 0 && (info.st_mode & S_IFMT) != S_IFDIR {
            throw PGCloneError(.invalidConfiguration, "the storage location \(location) is a file, not a directory; give a directory or s3://bucket/prefix")
        }
    }

    package func find(_ key: DumpKey) throws -> StoredDump? {
        try checkRoot()
        return fileSize(path(of: key)).map { StoredDump(key: key, size: $0) }
    }

    /// Names in `directory`, hidden ones (temporary files) excluded unless asked for; none if it
    /// does not exist.
    private func directoryEntries(_ directory: String, hidden: Bool = false) throws -> [String] {
        guard let handle = opendir(directory) else {
            if errno == ENOENT || errno == ENOTDIR { return [] }
            throw storageError("cannot list \(directory)")
        }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." && (hidden || !name.hasPrefix(".")) { names.append(name) }
        }
        return names
    }

    private func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    private func fileSize(_ path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(info.st_size)
    }

    // MARK: Writing

    package func write(_ key: DumpKey, from stream: ByteStream) async throws -> Int {
        let directory = "\(root)/\(key.database)"
        try makeDirectory(root)
        try makeDirectory(directory)
        let final = path(of: key)
        let temporary = "\(directory)/.\(key.timestamp).\(key.config).dump.\(getpid()).partial"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw storageError("cannot create \(temporary)") }
        // Released when the descriptor is closed, or when the process dies.
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(descriptor)
            unlink(temporary)
            throw storageError("cannot lock \(temporary)")
        }
        var isOpen = true
        var published = false
        defer {
            if isOpen { Glibc.close(descriptor) }
            if !published { unlink(temporary) }
        }
        var written = 0
        for try await chunk in stream {
            guard writeAll(descriptor, chunk) else { throw storageError("cannot write \(temporary)") }
            written += chunk.readableBytes
        }
        guard fsync(descriptor) == 0 else { throw storageError("cannot flush \(temporary) to disk") }
        isOpen = false
        guard Glibc.close(descriptor) == 0 else { throw storageError("cannot write \(temporary)") }
        // link(2) never replaces an existing file, unlike rename(2).
        guard link(temporary, final) == 0 else {
            if errno == EEXIST { throw PGCloneError(.storageFailed, "a dump named \(key) already exists in \(location)") }
            throw storageError("cannot publish \(final)")
        }
        published = true
        unlink(temporary)
        try syncDirectory(directory)
        return written
    }

    /// Hidden `.partial` files that no process holds locked: their pgclone is gone.
    package func removeAbandonedPartials(database: String?) throws -> [String] {
        let databases = try database.map { [$0] } ?? directoryEntries(root).filter { isDirectory("\(root)/\($0)") }
        var removed: [String] = []
        for name in databases {
            let directory = "\(root)/\(name)"
            for file in try directoryEntries(directory, hidden: true) where file.hasPrefix(".") && file.hasSuffix(".partial") {
                let path = "\(directory)/\(file)"
                let descriptor = open(path, O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else { continue }
                defer { Glibc.close(descriptor) }
                guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else { continue }
                if unlink(path) == 0 { removed.append(path) }
            }
        }
        return removed
    }

    private func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw storageError("cannot create directory \(path)")
        }
    }

    private func syncDirectory(_ path: String) throws {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw storageError("cannot open \(path)") }
        defer { Glibc.close(descriptor) }
        guard fsync(descriptor) == 0 else { throw storageError("cannot flush \(path) to disk") }
    }

    package func delete(_ key: DumpKey) throws {
        guard unlink(path(of: key)) == 0 || errno == ENOENT else { throw storageError("cannot delete \(path(of: key))") }
    }

    // MARK: Reading

    package func read(_ key: DumpKey, into output: ByteStream.Source) async throws -> Int {
        try await output.finishing {
            let file = path(of: key)
            let descriptor = open(file, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                if errno == ENOENT { throw PGCloneError(.objectNotFound, "no dump \(key) in \(location)") }
                throw storageError("cannot open \(file)")
            }
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
                if failed { throw storageError("cannot read \(file)") }
                if count == 0 { return total }
                total += count
                try await output.write(chunk)
            }
        }
    }

    private nonisolated func storageError(_ what: String) -> PGCloneError {
        PGCloneError(.storageFailed, "\(what): \(String(cString: strerror(errno)))")
    }
}
