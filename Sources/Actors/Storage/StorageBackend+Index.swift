package import PGCloneStreams

extension StorageBackend {
    /// What the dump under `key` ends with: its ``ArchiveIndex``, none, or a damaged one. One read
    /// of its last 64 KiB (one ranged GET in S3), and a second if the index is larger.
    package func archiveIndex(of key: DumpKey) async throws -> ArchiveIndex.Tail {
        let tail = ArchiveIndex.read(tail: try await readTail(key, length: 64 << 10))
        guard case .needsBytes(let count) = tail else { return tail }
        let whole = ArchiveIndex.read(tail: try await readTail(key, length: count))
        if case .needsBytes = whole { return .damaged("the object is shorter than its index says") }
        return whole
    }
}
