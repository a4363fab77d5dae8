import Foundation
import Glibc
import Subprocess

/// The pg_dump and pg_restore to run.
package struct PostgresTools: Sendable, Hashable {
    package var pgDump: String
    package var pgRestore: String
    /// Their major version, when known (`--version`).
    package var major: Int?

    package init(pgDump: String, pgRestore: String, major: Int? = nil) {
        self.pgDump = pgDump
        self.pgRestore = pgRestore
        self.major = major
    }
}

/// The PostgreSQL client programs installed here, and the choice among them: pg_dump of at least
/// the server's major version (an older one refuses: "server version mismatch"), pg_restore of at
/// least the version that wrote the archive (an older one cannot read it: "unsupported version
/// (1.16) in file header").
///
/// Looked for, in this order: `PGCLONE_PG_BIN_DIR`, every `/usr/lib/postgresql/*/bin` (Debian),
/// every `/usr/pgsql-*/bin` (RHEL, the PGDG packages), and `PATH` (Debian's `pg_wrapper` left out:
/// it picks a version by clusters, not by need). Each one's version comes from `pg_dump --version`.
package struct PostgresInstallations: Sendable {
    package struct Installation: Sendable, Hashable {
        package var directory: String
        package var major: Int

        package init(directory: String, major: Int) {
            self.directory = directory
            self.major = major
        }

        package var tools: PostgresTools {
            PostgresTools(pgDump: "\(directory)/pg_dump", pgRestore: "\(directory)/pg_restore", major: major)
        }
    }

    /// In the order looked in; the first of a version wins.
    package var installations: [Installation]
    /// `PGCLONE_PG_BIN_DIR`, which is preferred whenever it fits.
    package var explicitDirectory: String?

    package init(installations: [Installation], explicitDirectory: String? = nil) {
        self.installations = installations
        self.explicitDirectory = explicitDirectory
    }

    /// Finds the installations, running each one's `pg_dump --version`.
    package static func discover(environment: [String: String]) async throws(PGCloneError) -> PostgresInstallations {
        let explicit = environment["PGCLONE_PG_BIN_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        if let explicit, access("\(explicit)/pg_dump", X_OK) != 0 || access("\(explicit)/pg_restore", X_OK) != 0 {
            throw PGCloneError(
                .invalidConfiguration,
                """
                PGCLONE_PG_BIN_DIR=\(explicit) has no pg_dump and pg_restore; set it to the bin directory of \
                PostgreSQL's client programs
                """
            )
        }
        var candidates = explicit.map { [$0] } ?? []
        for (parent, prefix) in [("/usr/lib/postgresql", ""), ("/usr", "pgsql-")] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
            let versions = names.filter { $0.hasPrefix(prefix) }.compactMap { Int($0.dropFirst(prefix.count)) }.sorted(
                by: >
            )
            candidates += versions.map { "\(parent)/\(prefix)\($0)/bin" }
        }
        for directory in (environment["PATH"] ?? "").split(separator: ":").map(String.init) where !directory.isEmpty {
            let program = "\(directory)/pg_dump"
            guard let resolved = realpath(program, nil) else { continue }
            defer { free(resolved) }
            if String(cString: resolved).hasSuffix("/pg_wrapper") { continue }
            candidates.append(directory)
        }
        var found: [Installation] = []
        var seen = Set<String>()
        for directory in candidates
        where access("\(directory)/pg_dump", X_OK) == 0 && access("\(directory)/pg_restore", X_OK) == 0 {
            let canonical =
                realpath(directory, nil).map { pointer in
                    defer { free(pointer) }
                    return String(cString: pointer)
                } ?? directory
            guard seen.insert(canonical).inserted, let major = await Self.majorVersion(of: "\(directory)/pg_dump")
            else { continue }
            found.append(Installation(directory: directory, major: major))
        }
        // An interrupt stops `pg_dump --version`, which then says nothing: not "none was found".
        if Task.isCancelled { throw PGCloneError(.cancelled, "interrupted") }
        return PostgresInstallations(installations: found, explicitDirectory: explicit)
    }

    /// The pg_dump for a server of `serverVersion` (`server_version_num`): `PGCLONE_PG_BIN_DIR`'s if
    /// it is new enough, else one of the server's major version, else the oldest newer one.
    package func forDump(serverVersion: Int, serverVersionText: String) throws(PGCloneError) -> PostgresTools {
        let major = serverVersion / 10_000
        if let chosen = choose(atLeast: major, preferring: major) { return chosen.tools }
        throw PGCloneError(
            .invalidConfiguration,
            """
            no pg_dump here can dump PostgreSQL \(serverVersionText): it takes pg_dump \(major) or newer, and \
            \(describeFound("pg_dump")); 
            """
                + """
                install PostgreSQL \(major)'s client programs (Debian: postgresql-client-\(major); RHEL: \
                postgresql\(major)), or set PGCLONE_PG_BIN_DIR to their bin directory
                """
        )
    }

    /// The pg_restore for an archive of `archive` version, restored into a server of major version
    /// `serverMajor` (`nil`: none, `verify`): `PGCLONE_PG_BIN_DIR`'s if it can read the archive,
    /// else one of the server's major version if it can, else the oldest that can.
    package func forRestore(archive: ArchiveVersion?, serverMajor: Int?) throws(PGCloneError) -> PostgresTools {
        let minimum: Int
        if let archive {
            // A version newer than pgclone knows: the newest pg_restore, which says if it cannot.
            guard let needed = archive.minimumReaderMajor else {
                if let newest = installations.max(by: { $0.major < $1.major }) { return newest.tools }
                throw PGCloneError(
                    .invalidConfiguration,
                    """
                    no pg_restore was found (PGCLONE_PG_BIN_DIR, /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, PATH); \
                    install PostgreSQL's client programs
                    """
                )
            }
            minimum = needed
        } else {
            minimum = 0
        }
        if let chosen = choose(atLeast: minimum, preferring: serverMajor) { return chosen.tools }
        let made = archive.map { "archive version \($0), written by pg_dump \(minimum) or newer" } ?? "this archive"
        throw PGCloneError(
            .invalidConfiguration,
            """
            no pg_restore here can read this dump (\(made)): it takes pg_restore \(minimum) or newer, and \
            \(describeFound("pg_restore")); 
            """
                + """
                install PostgreSQL \(minimum)'s client programs or newer (Debian: postgresql-client-\(minimum); \
                RHEL: postgresql\(minimum)), or set PGCLONE_PG_BIN_DIR to their bin directory
                """
        )
    }

    private func choose(atLeast minimum: Int, preferring preferred: Int?) -> Installation? {
        let fitting = installations.filter { $0.major >= minimum }
        if let explicitDirectory, let explicit = fitting.first(where: { $0.directory == explicitDirectory }) {
            return explicit
        }
        if let preferred, let exact = fitting.first(where: { $0.major == preferred }) { return exact }
        return fitting.min { $0.major < $1.major }
    }

    private func describeFound(_ program: String) -> String {
        guard !installations.isEmpty else {
            return "none was found (PGCLONE_PG_BIN_DIR, /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, PATH)"
        }
        let list = installations.map { "\($0.major) (\($0.directory))" }.joined(separator: ", ")
        return "the \(program) found \(installations.count == 1 ? "is" : "are") \(list)"
    }

    /// The major version `pg_dump --version` prints (`pg_dump (PostgreSQL) 15.18 …` is 15); `nil`
    /// when it does not run or says something else.
    static func majorVersion(of program: String) async -> Int? {
        guard
            let result = try? await Subprocess.run(
                ChildProcess.executable(program),
                arguments: ["--version"],
                platformOptions: try ChildProcess.platformOptions(),
                output: .string(limit: 4096),
                error: .discarded
            ),
            result.terminationStatus.isSuccess
        else { return nil }
        return PostgresTools.majorVersion(fromVersionOutput: result.standardOutput)
    }
}

/// A custom-format archive's version (`1.16`), from its header.
package struct ArchiveVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    package var major: Int
    package var minor: Int

    package init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// From the first bytes of an archive (`PGDMP`, then major, minor, revision); `nil` if they
    /// are not one's.
    package init?(header bytes: some Collection<UInt8>) {
        let head = Array(bytes.prefix(7))
        guard head.count == 7, head.starts(with: Array("PGDMP".utf8)) else { return nil }
        self.init(major: Int(head[5]), minor: Int(head[6]))
    }

    /// The oldest pg_restore that reads it (pg_backup_archiver.h's K_VERS_*: 1.14 from pg_dump 12,
    /// 1.15 from 16, 1.16 from 17); `nil` for a version newer than pgclone knows.
    package var minimumReaderMajor: Int? {
        switch (major, minor) {
        case (1, ...13): 11
        case (1, 14): 12
        case (1, 15): 16
        case (1, 16): 17
        default: nil
        }
    }

    package var description: String { "\(major).\(minor)" }

    package static func < (lhs: ArchiveVersion, rhs: ArchiveVersion) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }
}
