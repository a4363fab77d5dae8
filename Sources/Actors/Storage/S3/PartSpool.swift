import Glibc
import NIOCore
import PGCloneStreams

/// Upload parts too large to hold in memory, spooled to files in a temporary directory: each file
/// is unlinked as soon as it is created, so it vanishes when its descriptor is closed — after its
/// upload, or with the process, however it ends. File I/O blocks, so the actor has its own executor.
actor PartSpool {
    private let executor = DispatchQueueExecutor(label: "pgclone.spool")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    nonisolated let directory: String

    init(directory: String) {
        self.directory = directory
    }

    func create() throws -> SpooledPart {
        var template = Array("\(directory)/pgclone-part.XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { throw spoolError("cannot create a file in \(directory) for an upload part") }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        return SpooledPart(descriptor: descriptor)
    }

    func append(_ chunk: ByteBuffer, to part: SpooledPart) throws {
        try chunk.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = pwrite(part.descriptor, bytes.baseAddress! + offset, bytes.count - offset, off_t(part.size + offset))
                if written < 0 {
                    if errno == EINTR { continue }
                    throw spoolError("cannot write an upload part to \(directory)")
                }
                offset += written
            }
        }
        part.size += chunk.readableBytes
    }

    private func spoolError(_ what: String) -> PGCloneError {
        PGCloneError(.storageFailed, "\(what): \(String(cString: strerror(errno))); set TMPDIR to a directory with room")
    }
}

/// One spooled part: an open, unlinked file. Written by ``PartSpool``, then read by one upload at a
/// time (`pread`, so retries read it again from the start).
final class SpooledPart: @unchecked Sendable {
    let descriptor: Int32
    var size = 0

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }
}
