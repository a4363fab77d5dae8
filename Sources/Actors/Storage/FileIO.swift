import Glibc
import NIOCore

/// Writes all of `chunk` to `descriptor`, retrying short writes and EINTR. Returns false on an
/// error, with `errno` saying which.
func writeAll(_ descriptor: Int32, _ chunk: ByteBuffer) -> Bool {
    chunk.withUnsafeReadableBytes { bytes in
        var offset = 0
        while offset < bytes.count {
            let result = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if result < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += result
        }
        return true
    }
}

/// Where temporary files go: `TMPDIR`, as for every Unix tool, else /tmp.
func temporaryDirectory(_ environment: [String: String]) -> String {
    environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
}
