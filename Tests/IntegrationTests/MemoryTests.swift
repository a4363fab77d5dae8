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

    @Test func aDumpFarLargerThanTheBuffersStreamsInBoundedMemory() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("mem_src")
        let target = TestEnvironment.uniqueName("mem_dst")
        try await server.createDatabase(source)
        try await server.psql(
            """
            CREATE TABLE big AS
                SELECT i, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) AS a, (i * 2654435761) % \
                4294967296 AS b
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
        print(
            """
            memory: stored dump \(storedSize >> 20) MiB; peak RSS dump \(dumpPeak >> 20) MiB, restore \
            \(restorePeak >> 20) MiB
            """
        )
        #expect(dumpPeak < Self.ceiling)
        #expect(restorePeak < Self.ceiling)

        // In pieces, with four sessions: the ceiling and what four sessions' pieces take.
        let inPieces = TestEnvironment.uniqueName("mem_pieces")
        let four = try await pgclone.run([
            "restore", key, "--database", server.url(inPieces), "--jobs", "4", "--log-level", "debug",
        ])
        #expect(four.exitCode == 0, "\(four)")
        #expect(four.stderr.contains("pgclone: restoring in "), "\(four)")
        #expect(try await server.tableFingerprints(inPieces) == server.tableFingerprints(source))
        let piecesPeak = try #require(peakMemory(four))
        print("memory: restore --jobs 4 in pieces, peak RSS \(piecesPeak >> 20) MiB")
        #expect(piecesPeak < Self.ceiling + PieceLoader.memory(sessions: 4, pieceSize: 4 << 20))
        try await server.dropDatabase(source)
        try await server.dropDatabase(target)
        try await server.dropDatabase(inPieces)
    }
}

/// The headline case: an S3 restore of a dump many times the memory limit.
@Suite(.enabled(if: TestEnvironment.hasPostgresAndS3, "run with scripts/test.sh (needs PostgreSQL and moto)"))
struct S3MemoryTests {
    @Test func anS3RestoreOfADumpTenTimesTheLimitStaysWithinIt() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let s3 = S3TestServer.shared!
        let source = TestEnvironment.uniqueName("s3mem_src")
        let target = TestEnvironment.uniqueName("s3mem_dst")
        try await server.createDatabase(source)
        try await server.psql(
            """
            CREATE TABLE big AS
                SELECT i, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) || md5((i * 17)::text) AS a
                FROM generate_series(1, 6500000) AS i
            """,
            database: source
        )
        let bucket = try await s3.makeBucket()
        let environment = s3.environment(location: "s3://\(bucket)/big")
        let dumped = try await pgclone.run(
            ["dump", "--database", server.url(source), "--log-level", "debug"],
            environment: environment
        )
        #expect(dumped.exitCode == 0, "\(dumped)")
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let archive = try await server.psql("SELECT pg_total_relation_size('big')", database: source)
        print(
            """
            S3 memory: table \(Int(archive)! >> 20) MiB, dump peak RSS \(peakMemory(dumped).map { $0 >> 20 } ?? -1) \
            MiB
            """
        )

        var peaks: [String: Int] = [:]
        for limit in ["64MiB", "32MiB"] {
            try await server.dropDatabase(target)
            let restored = try await pgclone.run(
                ["restore", key, "--database", server.url(target), "--memory-limit", limit, "--log-level", "debug"],
                environment: environment
            )
            #expect(restored.exitCode == 0, "\(restored)")
            // The archive that went through: at least ten times the limit.
            let archiveLine = restored.stderrLines.first { $0.hasPrefix("pgclone: restored a ") } ?? ""
            let mebibytes = Double(archiveLine.split(separator: " ")[3]) ?? 0
            #expect(mebibytes >= 640, "\(archiveLine)")
            // The object (64 to 512 MiB) is read in eight ranges, an eighth each; the windows, not the
            // ranges, take memory.
            let inFlight = limit == "64MiB" ? 4 : 2
            #expect(
                restored.stderrLines.contains {
                    $0.hasPrefix("pgclone: debug: downloading 8 ranges of ")
                        && $0.hasSuffix(" MiB, \(inFlight) in flight, each through a 2 MiB window")
                },
                "\(restored)"
            )
            let peak = try #require(peakMemory(restored))
            peaks[limit] = peak
        }
        #expect(try await server.psql("SELECT count(*) FROM big", database: target) == "6500000")
        print(
            "S3 memory: restore peak RSS \(peaks["64MiB"]! >> 20) MiB at 64MiB, \(peaks["32MiB"]! >> 20) MiB at 32MiB"
        )
        #expect(peaks["64MiB"]! < MemoryTests.ceiling)
        #expect(peakMemory(dumped)! < MemoryTests.ceiling)
        // Half the limit: its buffers, window and S3 parts (9 MiB planned) fit well within it, so the
        // run stays below the limit plus the process's own constant (measured 45–54 MiB against 64).
        let half = try MemoryBudget(limit: .mebibytes(32))
        #expect(peaks["32MiB"]! < half.limit.bytes + MemoryBudget.processConstant, "\(peaks["32MiB"]! >> 20) MiB")
        try await server.dropDatabase(source)
        try await server.dropDatabase(target)
    }
}

/// The peak resident memory pgclone reported (`--log-level debug`).
func peakMemory(_ result: CommandResult) -> Int? {
    let prefix = "pgclone: debug: peak resident memory (VmHWM): "
    return result.stderrLines.first { $0.hasPrefix(prefix) }
        .flatMap { Int($0.dropFirst(prefix.count).split(separator: " ").first ?? "") }
}
