import CPGCloneSystem
import Glibc
package import NIOCore
import PGCloneStreams
import Synchronization

/// A file in memory (`memfd_create`) that a child process opens by path: the table of contents
/// pg_restore reads, and its `-L` lists. pg_restore needs a file it can seek in for `--jobs`;
/// this one uses no disk and no TMPDIR, and goes when it is closed (or pgclone exits, however).
/// Its pages count towards the process's memory (cgroup), not its RSS.
///
/// Call ``close()`` once the child has ended: that also keeps the file alive until then (Swift
/// may end an object's life after its last use, which reading ``path`` would be).
package final class MemoryFile: Sendable {
    private let descriptor: Atomic<Int32>
    /// `/proc/PID/fd/N`: the child opens pgclone's descriptor through it (same user, so allowed).
    package let path: String

    /// A file holding `contents`.
    /// - Throws: ``PGCloneError`` (`storageFailed`) if the kernel refuses the file or its pages.
    package convenience init(name: String, contents: some Collection<UInt8>) throws {
        try self.init(name: name, buffer: ByteBuffer(bytes: contents))
    }

    /// A file holding `buffer`'s readable bytes, written from it without a copy (a table of
    /// contents can be tens of MB).
    /// - Throws: ``PGCloneError`` (`storageFailed`) if the kernel refuses the file or its pages.
    package convenience init(name: String, buffer bytes: ByteBuffer) throws {
        try self.init(name: name)
        do {
            try append(bytes)
        } catch {
            close()
            throw error
        }
    }

    /// An empty file, which ``append(_:)`` fills.
    /// - Throws: ``PGCloneError`` (`storageFailed`) if the kernel refuses the file.
    package init(name: String) throws {
        let descriptor = CPGCloneSystem_memfd(name)
        guard descriptor >= 0 else { throw PGCloneError.storageFailed("cannot create an in-memory file") }
        self.descriptor = Atomic(descriptor)
        path = "/proc/\(getpid())/fd/\(descriptor)"
    }

    /// Writes `bytes`' readable bytes at the end of the file (pages in memory: no disk is waited for).
    /// - Throws: ``PGCloneError`` (`storageFailed`) if the kernel refuses the pages.
    package func append(_ bytes: ByteBuffer) throws {
        guard writeAll(descriptor.load(ordering: .relaxed), bytes) else {
            throw PGCloneError.storageFailed("cannot write an in-memory file of \(bytes.readableBytes) more bytes")
        }
    }

    /// The file's bytes from its start, `chunkSize` at a time, each read when asked for (for a
    /// child's stdin, without holding the whole file). A read that fails ends the chunks early,
    /// which the child reports as an archive cut short.
    package func chunks(of chunkSize: Int) -> Chunks {
        Chunks(file: self, chunkSize: chunkSize)
    }

    package struct Chunks: Sequence, Sendable {
        let file: MemoryFile
        let chunkSize: Int

        package struct Iterator: IteratorProtocol {
            let file: MemoryFile
            let chunkSize: Int
            var offset = 0

            package mutating func next() -> ByteBuffer? {
                var chunk = ByteBufferAllocator().buffer(capacity: chunkSize)
                let descriptor = file.descriptor.load(ordering: .relaxed)
                let offset = self.offset
                let read = chunk.writeWithUnsafeMutableBytes(minimumWritableBytes: chunkSize) { destination in
                    var result = pread(descriptor, destination.baseAddress, chunkSize, off_t(offset))
                    while result < 0 && errno == EINTR {
                        result = pread(descriptor, destination.baseAddress, chunkSize, off_t(offset))
                    }
                    return Swift.max(0, result)
                }
                self.offset += read
                return read > 0 ? chunk : nil
            }
        }

        package func makeIterator() -> Iterator { Iterator(file: file, chunkSize: chunkSize) }
    }

    /// Closes the file, which frees it; idempotent.
    package func close() {
        let descriptor = descriptor.exchange(-1, ordering: .relaxed)
        if descriptor >= 0 { Glibc.close(descriptor) }
    }

    deinit {
        close()
    }
}
