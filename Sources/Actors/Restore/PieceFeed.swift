import NIOCore

/// The pieces of an indexed dump on their way from storage to the COPY sessions: a bounded queue.
/// One reader puts them in as it cuts them out of the object, read from start to end as a
/// streamed restore reads it (``PieceLoader/read(into:other:decoder:)``: S3's ranged GETs of
/// large parts, several in flight, resumed where they stopped); the sessions take them in order,
/// whichever is free first, but for a table whose rows keep their order
/// (``PieceRestorePlan/tablesInOrder``): the session that takes its first piece takes all of
/// them, one after the other, while the others take the pieces after them. The reader waits
/// while ``capacity`` pieces wait for a session.
///
/// Failing or cancelling either side ends the other's wait with the error.
actor PieceFeed {
    /// A piece to load: which (in ``PieceRestorePlan/pieces``), and its stored bytes.
    struct Item: Sendable {
        var index: Int
        var stored: ByteBuffer
        /// The table (its data's dump id) whose pieces one session loads in order, if it is one.
        var inOrder: Int? = nil
    }

    /// Pieces that may wait for a session.
    let capacity: Int
    private var queue: [Item] = []
    /// Sessions waiting for a piece, by number.
    private var takers: [(session: Int, continuation: CheckedContinuation<Item?, any Error>)] = []
    /// The session loading each table whose pieces load in order.
    private var owners: [Int: Int] = [:]
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
        if let taker = takers.firstIndex(where: { may($0.session, take: item) }) {
            let (session, continuation) = takers.remove(at: taker)
            claim(item, for: session)
            continuation.resume(returning: item)
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

    /// The next piece for session `session`, or `nil` once the reader has put the last one and
    /// none is left that it may take.
    /// - Throws: the error the feed failed with (the reader's: storage, a corrupt object).
    func next(session: Int) async throws -> Item? {
        if let index = queue.firstIndex(where: { may(session, take: $0) }) {
            let item = queue.remove(at: index)
            claim(item, for: session)
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
            try await withCheckedThrowingContinuation { takers.append((session, $0)) }
        } onCancel: {
            Task { await self.fail(CancellationError()) }
        }
    }

    /// Whether `session` may take `item`: any piece but one of a table in order that another
    /// session loads.
    private func may(_ session: Int, take item: Item) -> Bool {
        guard let table = item.inOrder, let owner = owners[table] else { return true }
        return owner == session
    }

    private func claim(_ item: Item, for session: Int) {
        if let table = item.inOrder, owners[table] == nil { owners[table] = session }
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
        // What is left in the queue is for the sessions loading those tables in order.
        for taker in takers { taker.continuation.resume(returning: nil) }
        takers = []
    }

    /// Ends the feed with `error`: for every session waiting or to come, and for the reader.
    func fail(_ error: any Error) {
        guard end == nil else { return }
        end = .failure(error)
        queue = []
        for taker in takers { taker.continuation.resume(throwing: error) }
        takers = []
        reader?.resume(throwing: error)
        reader = nil
    }

    private func checkNotFailed() throws {
        if case .failure(let error) = end { throw error }
    }
}
