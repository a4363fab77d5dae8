import Glibc
import PGCloneStreams

/// An upload part too large to hold in memory, spooled by ``PartCutter``: an open file of `size`
/// bytes, unlinked as soon as it was created, so it vanishes when its descriptor is closed — after
/// its upload, or with the process, however it ends. Written once, then read by one upload at a time
/// (`pread`, so a retry reads it again from the start).
package final class SpooledPart: Sendable {
    let descriptor: Int32
    /// Bytes in the file.
    package let size: Int

    init(descriptor: Int32, size: Int) {
        self.descriptor = descriptor
        self.size = size
    }

    deinit {
        close(descriptor)
    }

    /// A new, already unlinked file in `directory`; returns its descriptor.
    static func createFile(in directory: String) throws(S3ClientError) -> Int32 {
        var template = Array("\(directory)/pgclone-part.XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { throw error("cannot create a file in \(directory) for an upload part") }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        return descriptor
    }

    static func error(_ what: String) -> S3ClientError {
        S3ClientError(.unavailable, "\(what): \(systemErrorMessage); set TMPDIR to a directory with room")
    }
}
