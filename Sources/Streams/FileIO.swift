import Glibc
package import NIOCore

/// Writes all of `chunk` to `descriptor` (at `offset` with `pwrite`, else at the file position),
/// retrying short writes and EINTR. Returns false on an error, with `errno` saying which.
package func writeAll(_ descriptor: Int32, _ chunk: ByteBuffer, at offset: Int? = nil) -> Bool {
    chunk.withUnsafeReadableBytes { bytes in
        var written = 0
        while written < bytes.count {
            let start = bytes.baseAddress! + written
            let result =
                if let offset {
                    pwrite(descriptor, start, bytes.count - written, off_t(offset + written))
                } else {
                    Glibc.write(descriptor, start, bytes.count - written)
                }
            if result < 0 {
                if errno == EINTR { continue }
                return false
            }
            written += result
        }
        return true
    }
}

/// `errno`'s message (`No space left on device`), for errors that name a failed system call.
package var systemErrorMessage: String {
    String(cString: strerror(errno))
}

/// Where temporary files go: `TMPDIR`, as for every Unix tool, else /tmp.
package func temporaryDirectory(_ environment: [String: String]) -> String {
    environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
}
