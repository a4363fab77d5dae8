import NIOCore

/// Hands out an indexed dump's pieces, in the archive's order, to whoever asks next, reading them
/// from storage in ranges of several pieces: consecutive pieces are read together, about
/// ``rangeSize`` bytes at a time (a ranged GET in S3, retried from its start if it fails; `pread`
/// locally), the next range while the current one is handed out. One GET per piece would cost a
/// request's latency each (and, against moto, a read of the whole object each), where a range of
/// several costs it once.
///
/// Memory: the range being handed out, the one read ahead, and one whose last pieces are still
/// loading: about three ranges.
actor PieceFeed {
    /// A piece to load: where it is, and its stored bytes (a slice of its range's buffer).
    struct Item: Sendable {
        var index: Int
        var stored: ByteBuffer
    }

    /// Stored bytes read at once, at least (a single larger piece is read alone).
    static let rangeSize = 8 << 20

    private let read: @Sendable (Range<Int>) async throws -> ByteBuffer
    /// The pieces' stored ranges, in order, each after the one before.
    private let pieces: [Range<Int>]
    /// Ranges of consecutive pieces: indices into ``pieces``.
    private let groups: [Range<Int>]
    /// The group handed out after the current one.
    private var nextGroup = 0
    private var current: (group: Range<Int>, start: Int, buffer: ByteBuffer)?
    private var nextPiece = 0
    /// Groups being read, by their index in ``groups``: the next one, and the one after it.
    private var reads: [Int: Task<ByteBuffer, any Error>] = [:]

    /// - Parameters:
    ///   - pieces: the stored ranges of the pieces to hand out, in order (they need not touch).
    ///   - read: reads one stored range.
    init(pieces: [Range<Int>], read: @escaping @Sendable (Range<Int>) async throws -> ByteBuffer) {
        self.pieces = pieces
        self.read = read
        var groups: [Range<Int>] = []
        var start = 0
        for index in pieces.indices {
            let isLast = index + 1 == pieces.count
            let next = isLast ? nil : pieces[index + 1]
            // A group ends at the last piece, before a gap, or once it is long enough.
            if isLast || next!.lowerBound != pieces[index].upperBound
                || pieces[index].upperBound - pieces[start].lowerBound >= Self.rangeSize
            {
                groups.append(start..<index + 1)
                start = index + 1
            }
        }
        self.groups = groups
    }

    deinit {
        for read in reads.values { read.cancel() }
    }

    /// The next piece, or `nil` when every piece has been handed out.
    /// - Throws: what reading a range threw (to every caller waiting for it).
    func next() async throws -> Item? {
        while true {
            if let current, nextPiece < current.group.upperBound {
                let index = nextPiece
                nextPiece += 1
                let range = pieces[index]
                let stored = current.buffer.getSlice(at: range.lowerBound - current.start, length: range.count)!
                return Item(index: index, stored: stored)
            }
            guard nextGroup < groups.count else { return nil }
            // The next group: being read already (ahead, or by another caller waiting for it),
            // or read now. The actor is reentrant: once the bytes are in, another caller may
            // have made the group current, and the loop hands out from it.
            let number = nextGroup
            let reading = reads[number] ?? readTask(number)
            let buffer = try await withTaskCancellationHandler {
                try await reading.value
            } onCancel: {
                reading.cancel()
            }
            guard nextGroup == number else { continue }
            let group = groups[number]
            current = (group, pieces[group.lowerBound].lowerBound, buffer)
            nextPiece = group.lowerBound
            nextGroup += 1
            reads[number] = nil
            if nextGroup < groups.count, reads[nextGroup] == nil { _ = readTask(nextGroup) }
        }
    }

    /// Starts reading group `number`, and keeps the task in ``reads``.
    private func readTask(_ number: Int) -> Task<ByteBuffer, any Error> {
        let group = groups[number]
        let range = pieces[group.lowerBound].lowerBound..<pieces[group.upperBound - 1].upperBound
        let read = self.read
        let task = Task { try await read(range) }
        reads[number] = task
        return task
    }
}
