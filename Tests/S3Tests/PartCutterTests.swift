import Foundation
import Glibc
import Logging
import NIOCore
import PGCloneStreams
import Testing

@testable import PGCloneS3

/// The upload part cutter: parts follow the schedule whatever the chunks' sizes, in memory up to the
/// schedule's limit and spooled above it, and together they are the stream, byte for byte.
@Suite struct PartCutterTests {
    /// A stream of `bytes` in chunks of the given sizes, written by a task.
    private func stream(_ bytes: [UInt8], chunks sizes: [Int]) -> ByteStream {
        let (stream, source) = ByteStream.makeStream(backpressureStrategy: .capacity(.bytes(1 << 20)))
        Task {
            var offset = 0
            var index = 0
            while offset < bytes.count {
                let size = min(sizes[index % sizes.count], bytes.count - offset)
                try await source.write(ByteBuffer(bytes: bytes[offset..<offset + size]))
                offset += size
                index += 1
            }
            source.finish()
        }
        return stream
    }

    private func contents(_ part: PartBody) -> [UInt8] {
        switch part {
        case .memory(let buffer):
            return Array(buffer.readableBytesView)
        case .file(let file):
            var bytes = [UInt8](repeating: 0, count: file.size)
            let read = bytes.withUnsafeMutableBytes { pread(file.descriptor, $0.baseAddress!, file.size, 0) }
            #expect(read == file.size)
            return bytes
        }
    }

    @Test(arguments: [[1], [7, 1000, 3], [4096], [10_000]])
    func partsFollowTheScheduleAndKeepEveryByte(chunkSizes: [Int]) async throws {
        let schedule = PartSchedule(base: 1000, partsPerSize: 2, memoryLimit: 2000)
        let input = (0..<13_500).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
        let cutter = PartCutter(
            stream(input, chunks: chunkSizes),
            schedule: schedule,
            spoolDirectory: temporaryDirectory(ProcessInfo.processInfo.environment),
            logger: Logger(label: "test")
        )
        var parts: [PartBody] = []
        while let part = try await cutter.next() { parts.append(part) }
        // 1000, 1000, 2000, 2000, then 4000-byte parts (spooled: above the memory limit), the last short.
        #expect(parts.map(\.size) == [1000, 1000, 2000, 2000, 4000, 3500])
        #expect(parts.map { if case .file = $0 { true } else { false } } == [false, false, false, false, true, true])
        #expect(parts.flatMap(contents) == input)
        #expect(await cutter.count == 6)
    }

    @Test func anEmptyStreamHasNoParts() async throws {
        let schedule = PartSchedule(base: 1000, partsPerSize: 1, memoryLimit: 1000)
        let cutter = PartCutter(
            stream([], chunks: [1]),
            schedule: schedule,
            spoolDirectory: "/tmp",
            logger: Logger(label: "test")
        )
        let part = try await cutter.next()
        #expect(part == nil)
    }

    @Test func anUnwritableSpoolSaysWhereAndWhatToDo() async throws {
        let schedule = PartSchedule(base: 10, partsPerSize: 1, memoryLimit: 0)
        let cutter = PartCutter(
            stream(Array(repeating: 1, count: 100), chunks: [10]),
            schedule: schedule,
            spoolDirectory: "/nonexistent-pgclone-spool",
            logger: Logger(label: "test")
        )
        let error = await #expect(throws: S3ClientError.self) { try await cutter.next() }
        #expect(
            error?.message
                == "cannot create a file in /nonexistent-pgclone-spool for an upload part: No such file or directory; "
                + "set TMPDIR to a directory with room"
        )
    }

    /// The real schedule: 10,000 parts hold S3's largest object, the first 900 at the base size.
    @Test func tenThousandPartsHoldFiveTebibytes() throws {
        let s3 = try S3Configuration(
            location: "s3://bucket",
            environment: [:],
            profileRegion: nil,
            partsInFlight: 4,
            partSize: 2 << 20
        )
        let schedule = s3.partSchedule
        let sizes = (1...PartSchedule.maximumParts).map { schedule.size(ofPart: $0) }
        #expect(sizes[0] == 5 << 20)
        #expect(sizes[899] == 5 << 20)
        #expect(sizes[900] == 10 << 20)
        #expect(sizes.max() == 5 << 30)
        #expect(sizes.reduce(0, +) >= 5 << 40)
        // Only parts larger than the first are spooled to disk.
        #expect(schedule.memoryLimit == sizes[0])
    }
}
