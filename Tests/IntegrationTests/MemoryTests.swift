import Foundation
import PGCloneActors
import PGCloneStreams
import PGCloneTestSupport
import Testing

/// pgclone's memory is bounded by its budget, not by the dump's size.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct MemoryTests {
    /// The 64 MiB default, with a wide margin below it for a debug build.
    static let ceiling = 64 << 20

    private func peakMemory(_ result: CommandResult) -> Int? {
        let prefix = "pgclone: debug: peak resident memory (VmHWM): "
        return result.stderrLines.first { $0.hasPrefix(prefix) }
            .flatMap { Int($0.dropFirst(prefix.count).split(separator: " ").first ?? "") }
    }

    @Test func aDumpFarLargerThanTheBuffersStreamsInBoundedMemory() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("mem_src")
        let target = TestEnvironment.uniqueName("mem_dst")
        try await server.createDatabase(source)
        try await server.psql(
            """
            CREATE TABLE big AS
                SELECT i, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) AS a, (i * 2654435761) % 4294967296 AS b
                FROM generate_series(1, 1500000) AS i;
            """,
            database: source
        )
        let budget = try MemoryBudget()
        let buffers = 2 * budget.streamCapacity.bytes

        let dumped = try await pgclone.run(["dump", "--database", server.url(source), "--log-level", "debug"])
        #expect(dumped.exitCode == 0, "\(dumped)")
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let storedSize = try pgclone.storedData(key).count
        // Even compressed, the dump is over 20 times what the streams between stages hold.
        #expect(storedSize > 20 * buffers, "stored \(storedSize) bytes, buffers \(buffers)")

        let restored = try await pgclone.run(["restore", key, "--database", server.url(target), "--log-level", "debug"])
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await server.tableFingerprints(target) == server.tableFingerprints(source))

        let dumpPeak = try #require(peakMemory(dumped))
        let restorePeak = try #require(peakMemory(restored))
        print("memory: stored dump \(storedSize >> 20) MiB; peak RSS dump \(dumpPeak >> 20) MiB, restore \(restorePeak >> 20) MiB")
        #expect(dumpPeak < Self.ceiling)
        #expect(restorePeak < Self.ceiling)
        try await server.dropDatabase(source)
        try await server.dropDatabase(target)
    }
}
