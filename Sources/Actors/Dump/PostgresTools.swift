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
    package static func newest(environment: [String: String]) throws(PGCloneError) -> PostgresTools {
        let installed = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        let major = installed.compactMap(Int.init).max() ?? 0
        return try locate(serverVersion: major * 10_000, environment: environment)
    }

    package static func locate(serverVersion: Int, environment: [String: String]) throws(PGCloneError) -> PostgresTools {
        let major = serverVersion / 10_000
        if let override = environment["PGCLONE_PG_BIN_DIR"], !override.isEmpty {
            // Said explicitly, so not silently replaced by another version's tools.
            guard access("\(override)/pg_dump", X_OK) == 0, access("\(override)/pg_restore", X_OK) == 0 else {
                throw PGCloneError(
                    .invalidConfiguration,
                    "PGCLONE_PG_BIN_DIR=\(override) has no pg_dump and pg_restore; set it to the bin directory of PostgreSQL's client programs"
                )
            }
            return PostgresTools(pgDump: "\(override)/pg_dump", pgRestore: "\(override)/pg_restore")
        }
        let directories = ["/usr/lib/postgresql/\(major)/bin", "/usr/pgsql-\(major)/bin"]
        for directory in directories where access("\(directory)/pg_dump", X_OK) == 0 {
            return PostgresTools(pgDump: "\(directory)/pg_dump", pgRestore: "\(directory)/pg_restore")
        }
        return PostgresTools(pgDump: "pg_dump", pgRestore: "pg_restore")
    }
}
