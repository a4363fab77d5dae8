import PGCloneStreams
import Testing

@Suite struct DumpHeadTests {
    /// A custom-format header as pg_dump's WriteHead writes it: compression as an integer before
    /// archive version 1.15, as a byte from it on.
    static func archiveHeader(minor: UInt8, database: String) -> [UInt8] {
        func int(_ value: Int) -> [UInt8] {
            [value < 0 ? 1 : 0] + withUnsafeBytes(of: UInt32(abs(value)).littleEndian) { Array($0) }
        }
        var bytes = Array("PGDMP".utf8) + [1, minor, 0, 4, 8, 1]
        bytes += minor >= 15 ? [0] : int(-1)
        for field in [5, 4, 3, 2, 1, 126, 0] { bytes += int(field) }
        bytes += int(database.utf8.count) + Array(database.utf8)
        bytes += int(5) + Array("15.18".utf8)
        return bytes
    }

    @Test(arguments: [UInt8(14), 15, 16])
    func aPlainArchiveNamesItsDatabase(minor: UInt8) {
        #expect(
            DumpHead.parse(Self.archiveHeader(minor: minor, database: "rel.col"))
                == .head(DumpHead(archiveDatabase: "rel.col"))
        )
        // Cut short, or a version it does not know: no name, never a wrong one.
        #expect(
            DumpHead.parse(Array(Self.archiveHeader(minor: minor, database: "rel.col").prefix(40))) == .head(DumpHead())
        )
    }

    @Test func pgclonesMetadataNamesItsDatabaseAndConfig() throws {
        let metadata = DumpMetadata(
            pgcloneVersion: "test",
            serverVersion: "15.18",
            database: "A/B",
            dumpConfig: "anon",
            createdAt: "x",
            settings: []
        )
        let frame = try metadata.skippableFrame()
        #expect(DumpHead.parse(frame + [0x28, 0xB5, 0x2F, 0xFD]) == .head(DumpHead(metadata: metadata)))
        #expect(DumpHead.parse(Array(frame.prefix(20))) == .needsBytes(frame.count))
    }
}
