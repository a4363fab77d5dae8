import PGCloneActors
import PGCloneS3
import PGCloneStreams
import Testing

/// The S3 transfer sizes the memory budget gives.
@Suite struct S3BudgetTests {
    @Test func partsFitTheBudget() throws {
        let budget = try MemoryBudget()
        let s3 = try S3Configuration(location: "s3://bucket", environment: [:], profileRegion: nil, budget: budget)
        #expect(s3.downloadConcurrency * s3.downloadWindow == 8 << 20)
        // Ranges are an eighth of the object, 8 to 64 MiB; the memory stays concurrency × window.
        #expect(s3.downloadPartSize(forObjectOf: 1000) == 8 << 20)
        #expect(s3.downloadPartSize(forObjectOf: 100 << 20) == 13 << 20)
        #expect(s3.downloadPartSize(forObjectOf: 500 << 20) == 63 << 20)
        #expect(s3.downloadPartSize(forObjectOf: 50 << 30) == 64 << 20)
        let fixed = try S3Configuration(
            location: "s3://bucket",
            environment: ["PGCLONE_S3_PART_SIZE": "1MiB"],
            profileRegion: nil,
            budget: budget
        )
        #expect(fixed.downloadPartSize(forObjectOf: 50 << 30) == 1 << 20)
        #expect(s3.uploadPartSize >= 5 << 20)
        #expect((s3.uploadConcurrency + 1) * s3.uploadPartSize <= 16 << 20)
        let small = try S3Configuration(
            location: "s3://bucket",
            environment: [:],
            profileRegion: nil,
            budget: MemoryBudget(limit: .mebibytes(32))
        )
        #expect(small.downloadConcurrency * small.downloadWindow == 4 << 20)
    }
}
