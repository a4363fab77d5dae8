import PGCloneActors
import PGCloneStreams
import Testing

@Suite struct MemoryBudgetTests {
    @Test func theDefaultBudgetFitsIn64MiB() throws {
        let budget = try MemoryBudget()
        #expect(budget.streamCapacity == .mebibytes(1))
        #expect(budget.decompression.windowLogMax == 23)
        #expect(budget.compression.workers == 2)
        // Buffers, the zstd window and the process's own constant.
        #expect(budget.restoreTerms.map(\.bytes).reduce(0, +) < 64 << 20)
        #expect(budget.dumpTerms.map(\.bytes).reduce(0, +) < 64 << 20)
    }

    @Test func smallerLimitsScaleEveryTermDown() throws {
        let budget = try MemoryBudget(limit: .mebibytes(16))
        #expect(budget.streamCapacity == .kibibytes(256))
        #expect(budget.decompression.windowLogMax == 21)
        #expect(budget.compression.workers == 0)
        #expect(throws: PGCloneError.self) { try MemoryBudget(limit: .mebibytes(15)) }
    }

    @Test func higherCompressionLevelsTakeFewerWorkersThenNeedMoreMemory() throws {
        #expect(try MemoryBudget(compressionLevel: 6).compression.workers == 2)
        let nine = try MemoryBudget(compressionLevel: 9)
        #expect(nine.compression.workers == 1)
        #expect(nine.dumpTerms.map(\.bytes).reduce(0, +) < 64 << 20)
        try nine.checkCompressionFits(origin: "--compression-level")
        #expect(throws: PGCloneError.self) { try MemoryBudget(compressionLevel: 12).checkCompressionFits(origin: "x") }
        let roomy = try MemoryBudget(limit: .mebibytes(256), compressionLevel: 12)
        #expect(roomy.compression.workers == 1)
        try roomy.checkCompressionFits(origin: "x")
    }
}
