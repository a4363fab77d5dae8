import Foundation
import Testing

/// ARCHITECTURE.md describes the code as it is: every Swift name it writes in backticks — a type
/// and each member after it (`ByteStream.Source.writeBlocking`), or a camel-case function or
/// property (`runStages`) — is declared under `Sources/` (or, for a test suite, `Tests/`).
@Suite struct ArchitectureDocTests {
    private static let root = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Backticked words that pgclone does not declare: S3's API, libpq's C type, the standard
    /// library's and NIO's types.
    private static let declaredElsewhere: Set<String> = [
        "CompleteMultipartUpload", "PutObject", "UploadPart", "PGconn", "ByteBuffer", "CancellationError", "Duration",
    ]

    /// The Swift sources' text (the tests' too, which the page also names), all files together.
    private func sources() throws -> String {
        var text = ""
        for folder in ["Sources", "Tests"] {
            let directory = Self.root.appending(path: folder)
            let files = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil)!
            for case let file as URL in files
            where file.pathExtension == "swift" && file.lastPathComponent != "ArchitectureDocTests.swift" {
                text += try String(contentsOf: file, encoding: .utf8) + "\n"
            }
        }
        // Targets are declared in the manifest.
        return text + (try String(contentsOf: Self.root.appending(path: "Package.swift"), encoding: .utf8))
    }

    /// The dotted Swift paths in backticks: `A`, `A.b`, `A.B.c(d:)` (arguments dropped).
    static func names(in page: String) -> [[String]] {
        let spans = page.split(separator: "`", omittingEmptySubsequences: false).enumerated()
            .filter { $0.offset % 2 == 1 }.map { String($0.element) }
        return spans.compactMap { span -> [String]? in
            // A file name (`Main.swift`) is not a Swift path.
            guard !span.hasSuffix(".swift"), !span.hasSuffix(".md") else { return nil }
            let path = span.prefix { $0 != "(" }
            let components = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard let first = components.first?.first, !span.contains("__"),
                components.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } }),
                !declaredElsewhere.contains(components[0]), components[0] != components[0].uppercased()
            else { return nil }
            // A lowercase word alone (`copy`, `fsync`) may be anything; camel case is Swift's.
            guard first.isUppercase || path.contains(where: \.isUppercase) else { return nil }
            return components
        }
    }

    @Test func everyNameItWritesIsDeclared() throws {
        let page = try String(contentsOf: Self.root.appending(path: "ARCHITECTURE.md"), encoding: .utf8)
        let code = try sources()
        let names = Self.names(in: page)
        #expect(names.count > 50)
        var missing: [String] = []
        for path in names {
            for (index, component) in path.enumerated() {
                let kinds =
                    component.first!.isUppercase
                    ? "struct|class|actor|enum|protocol|typealias|name:" : "func|var|let|case"
                let declared = code.range(
                    of: "(\(kinds)) \"?\(component)\\b",
                    options: .regularExpression
                )
                if declared == nil { missing.append(path.prefix(index + 1).joined(separator: ".")) }
            }
        }
        #expect(missing.isEmpty, "ARCHITECTURE.md names what Sources/ does not declare: \(Set(missing).sorted())")
    }
}
