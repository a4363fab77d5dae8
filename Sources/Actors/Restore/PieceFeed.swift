import NIOCore

/// The pieces of an indexed dump on their way from storage to the COPY sessions: a bounded queue.
/// One reader puts them in as it cuts them out of the object, read from start to end as a
/// streamed restore reads it (``PieceLoader/read(into:other:decoder:)``: S3's ranged GETs of
/// large parts, several in flight, resumed where they stopped); the sessions take them in order,
/// whichever is free first. The reader waits while ``capacity`` pieces wait for a session.
///
/// Failing or cancelling either side ends the other's wait with the error.
actor PieceFeed {
    /// A piece to load: which (in ``PieceRestorePlan/pieces``), and its stored bytes.
    struct Item: Sendable {
        var index: Int
        var stored: ByteBuffer
    }

    /// Pieces that may wait for a session.
    let capacity: Int
    private var queue: [Item] = []
    /// Sessions waiting for a piece.
    private var takers: [CheckedContinuation<Item?, any Error>] = []
    /// The reader, waiting for room.
    private var reader: CheckedContinuation<Void, any Error>?
    /// How the feed ended: every piece put, or an error.
    private var end: Result<Void, any Error>?
    /// Buffers of pieces decompressed, for the reader to cut the next pieces into: a fresh buffer
    /// of megabytes is a fresh mapping, faulted in and zeroed page by page. The reader takes one
    /// before it allocates, so there are never more buffers than pieces were at once on their way
    /// (waiting, being cut, or being decompressed by a session).
    private var spares: [ByteBuffer] = []

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Adds the next piece; waits while ``capacity`` pieces wait.
    /// - Throws: the error the feed failed with (a session's, or cancellation).
    func put(_ item: Item) async throws {
        try checkNotFailed()
        if !takers.isEmpty {
            takers.removeFirst().resume(returning: item)
            return
        }
        queue.append(item)
        while queue.count >= capacity && end == nil {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { reader = $0 }
            } onCancel: {
                Task { await self.fail(CancellationError()) }
            }
        }
        try checkNotFailed()
    }

    /// The next piece, or `nil` once the reader has put the last one and the queue is empty.
    /// - Throws: the error the feed failed with (the reader's: storage, a corrupt object).
    func next() async throws -> Item? {
        if !queue.isEmpty {
            let item = queue.removeFirst()
            reader?.resume()
            reader = nil
            return item
        }
        switch end {
        case .success: return nil
        case .failure(let error): throw error
        case nil: break
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { takers.append($0) }
        } onCancel: {
            Task { await self.fail(CancellationError()) }
        }
    }

    /// A buffer of a piece already decompressed, if one is kept, for the next piece to be cut into.
    func spare() -> ByteBuffer? {
        spares.popLast()
    }

    /// Keeps `buffer`, a piece's whose stored bytes are no longer needed, for ``spare()``.
    func recycle(_ buffer: consuming ByteBuffer) {
        guard spares.count <= 2 * capacity, buffer.capacity <= PieceDecoder.largestSpare else { return }
        spares.append(buffer)
    }

    /// Every piece has been put.
    func finish() {
        guard end == nil else { return }
        end = .success(())
        for taker in takers { taker.resume(returning: nil) }
        takers = []
    }

    /// Ends the feed with `error`: for every session waiting or to come, and for the reader.
    func fail(_ error: any Error) {
        guard end == nil else { return }
        end = .failure(error)
        queue = []
        for taker in takers { taker.resume(throwing: error) }
        takers = []
        reader?.resume(throwing: error)
        reader = nil
    }

    private func checkNotFailed() throws {
        if case .failure(let error) = end { throw error }
    }
}
