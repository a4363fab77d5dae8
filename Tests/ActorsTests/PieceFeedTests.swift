import NIOCore
import Testing

@testable import PGCloneActors

/// The queue between the reader and the COPY sessions: pieces of a table in order go to one
/// session, in order, while the others take what comes after them.
@Suite struct PieceFeedTests {
    static func item(_ index: Int, inOrder table: Int? = nil) -> PieceFeed.Item {
        PieceFeed.Item(index: index, stored: ByteBuffer(), inOrder: table)
    }

    @Test func theSessionThatTakesATablesFirstPieceTakesAllOfItsPieces() async throws {
        let feed = PieceFeed(capacity: 8)
        // Table 7 (in order) in pieces 0, 1 and 3; piece 2 is another table's.
        for item in [Self.item(0, inOrder: 7), Self.item(1, inOrder: 7), Self.item(2), Self.item(3, inOrder: 7)] {
            try await feed.put(item)
        }
        await feed.finish()
        #expect(try await feed.next(session: 1)?.index == 0)
        // Session 2 passes over table 7's pieces to the next it may take, then has none left.
        #expect(try await feed.next(session: 2)?.index == 2)
        #expect(try await feed.next(session: 2) == nil)
        #expect(try await feed.next(session: 1)?.index == 1)
        #expect(try await feed.next(session: 1)?.index == 3)
        #expect(try await feed.next(session: 1) == nil)
    }

    @Test func aWaitingSessionGetsOnlyAPieceItMayTake() async throws {
        let feed = PieceFeed(capacity: 8)
        try await feed.put(Self.item(0, inOrder: 7))
        #expect(try await feed.next(session: 1)?.index == 0)
        // Session 2 waits; table 7's next piece is session 1's, the other table's is for it.
        async let taken = feed.next(session: 2)
        try await Task.sleep(for: .milliseconds(50))
        try await feed.put(Self.item(1, inOrder: 7))
        try await feed.put(Self.item(2))
        #expect(try await taken?.index == 2)
        #expect(try await feed.next(session: 1)?.index == 1)
    }

    @Test func piecesOfTablesNotInOrderGoToWhicheverSessionAsks() async throws {
        let feed = PieceFeed(capacity: 8)
        for index in 0..<3 { try await feed.put(Self.item(index)) }
        #expect(try await feed.next(session: 2)?.index == 0)
        #expect(try await feed.next(session: 2)?.index == 1)
        #expect(try await feed.next(session: 1)?.index == 2)
    }
}
