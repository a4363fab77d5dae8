import Foundation
import Glibc

/// The pg_dump and pg_restore to run against a server: those of its major version where the system
/// keeps one per version (Debian's `/usr/lib/postgresql/N/bin`, the PGDG RPMs' `/usr/pgsql-N/bin`),
/// else the ones on `PATH`. `PGCLONE_PG_BIN_DIR` overrides both.
package struct PostgresTools: Sendable, Hashable {
    package var pgDump: String
    package var pgRestore: String

    package init(pgDump: String, pgRestore: String) {
        self.pgDump = pgDump
        self.pgRestore = pgRestore
    }

    /// The newest installed, for reading an archive without a server (`verify`).
    package static func newest(environment: [String: String]) -> PostgresTools {
        let installed = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        let major = installed.compactMap(Int.init).max() ?? 0
        return locate(serverVersion: major * 10_000, environment: environment)
    }

    package static func locate(serverVersion: Int, environment: [String: String]) -> PostgresTools {
        let major = serverVersion / 10_000
        var directories: [String] = []
        if let override = environment["PGCLONE_PG_BIN_DIR"], !override.isEmpty {
            directories.append(override)
        }
        directories += ["/usr/lib/postgresql/\(major)/bin", "/usr/pgsql-\(major)/bin"]
        for directory in directories where access("\(directory)/pg_dump", X_OK) == 0 {
            return PostgresTools(pgDump: "\(directory)/pg_dump", pgRestore: "\(directory)/pg_restore")
        }
        return PostgresTools(pgDump: "pg_dump", pgRestore: "pg_restore")
    }
}
