import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// One database, one series: names that an earlier release sanitised into one key prefix keep
/// their own dumps, on local storage and on S3; a dump config is part of a dump's identity.
@Suite(
    .serialized,
    .enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)")
)
struct SeriesTests {
    enum Location: String, CaseIterable { case local, s3 }

    /// A harness and the environment that points it at `location`.
    static func setUp(_ location: Location) async throws -> (PGCloneHarness, [String: String?]) {
        let pgclone = try PGCloneHarness()
        guard location == .s3 else { return (pgclone, [:]) }
        let s3 = try #require(S3TestServer.shared, "the S3 tests need PGCLONE_TEST_S3_ENDPOINT")
        let bucket = try await s3.makeBucket()
        return (pgclone, s3.environment(location: "s3://\(bucket)/dumps"))
    }

    /// A database whose table `t` holds its own name.
    static func seed(_ name: String, _ server: PostgresServer) async throws {
        try await server.dropDatabase(name)
        try await server.createDatabase(name)
        try await server.psql("CREATE TABLE t (v text); INSERT INTO t VALUES (\(server.literal(name)))", database: name)
    }

    static func dump(
        _ name: String,
        _ pgclone: PGCloneHarness,
        _ environment: [String: String?],
        _ extra: [String] = []
    ) async throws -> String {
        let result = try await pgclone.run(
            ["dump"] + extra,
            environment: environment.merging(pgclone.server.environment(name)) { $1 }
        )
        #expect(result.exitCode == 0, "\(result)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `pgclone restore source` into `target` (named through PGDATABASE: any name works).
    static func restore(
        _ source: String,
        into target: String,
        _ pgclone: PGCloneHarness,
        _ environment: [String: String?],
        _ extra: [String] = []
    ) async throws -> CommandResult {
        try await pgclone.run(
            ["restore", source] + extra,
            environment: environment.merging(pgclone.server.environment(target)) { $1 }
        )
    }

    static func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    static let pairs: [(String, String)] = [
        ("rel.col", "rel_col"), ("A/B", "A_B"), ("Ünïcode", "_n_code"),
        (String(repeating: "é", count: 28), String(repeating: "_", count: 28)),
    ]

    @Test(arguments: Location.allCases)
    func namesThatOnceSharedAPrefixKeepTheirOwnSeries(_ location: Location) async throws {
        let (pgclone, environment) = try await Self.setUp(location)
        let server = pgclone.server
        let suffix = "-" + UUID().uuidString.prefix(6).lowercased()
        let names = Self.pairs.flatMap { [$0.0 + suffix, $0.1 + suffix] }
        #expect(names.last!.utf8.count == 35 && names[6].utf8.count == 63)
        for name in names {
            try await Self.seed(name, server)
            for _ in 0..<2 { _ = try await Self.dump(name, pgclone, environment) }
        }
        let listed = try await pgclone.run(["ls", "--only-db-names"], environment: environment)
        #expect(Self.lines(listed.stdout) == names.sorted(), "\(listed)")

        let target = TestEnvironment.uniqueName("series")
        for name in names {
            let restored = try await Self.restore(name, into: target, pgclone, environment)
            #expect(restored.exitCode == 0, "\(restored)")
            #expect(try await server.psql("SELECT v FROM t", database: target) == name)
            let verified = try await pgclone.run(["verify", name, "--json"], environment: environment)
            let report = try JSONDecoder().decode([String: JSONValue].self, from: Data(verified.stdout.utf8))
            #expect(report["database"]?.string == name, "\(verified)")
            // The index was read from the object's end (a suffix-range GET on S3) and checked.
            guard case .number(let pieces) = report["indexed_pieces"] else {
                Issue.record("verify read no index: \(verified)")
                continue
            }
            #expect(pieces >= 2, "\(verified)")
        }
        // Pruning one database leaves its twin's dumps alone; pruning all keeps each one's newest.
        let first = try await pgclone.run(
            ["prune", names[1], "--keep-last", "1", "--confirm", "--json"],
            environment: environment
        )
        #expect(first.exitCode == 0, "\(first)")
        for name in names {
            let dumps = try await pgclone.run(["ls", name], environment: environment)
            #expect(Self.lines(dumps.stdout).count == (name == names[1] ? 1 : 2), "\(name): \(dumps)")
        }
        let all = try await pgclone.run(["prune", "--keep-last", "1", "--confirm"], environment: environment)
        #expect(all.exitCode == 0, "\(all)")
        let left = try await pgclone.run(["ls", "--json"], environment: environment)
        let entries = try JSONDecoder().decode([[String: JSONValue]].self, from: Data(left.stdout.utf8))
        #expect(entries.compactMap { $0["database"]?.string }.sorted() == names.sorted(), "\(left)")
        try await server.dropDatabase(target)
        for name in names { try await server.dropDatabase(name) }
    }

    /// A dump that the previous release wrote under a sanitised prefix lists under its real name,
    /// restores by that name, and is not taken for the dumps of the name its prefix spells.
    @Test(arguments: Location.allCases)
    func keysOfThePreviousReleaseStillListRestoreAndPrune(_ location: Location) async throws {
        let (pgclone, environment) = try await Self.setUp(location)
        let server = pgclone.server
        let suffix = "_" + UUID().uuidString.prefix(6).lowercased()
        let (dotted, plain) = ("rel.col" + suffix, "rel_col" + suffix)
        try await Self.seed(dotted, server)
        try await Self.seed(plain, server)
        let plainKey = try await Self.dump(plain, pgclone, environment)
        let dottedKey = try await Self.dump(dotted, pgclone, environment)
        // As the previous release would have written it: under rel_col…/, newer than plain's.
        let legacyKey = KeySegment.sanitized(dotted) + "/" + dottedKey.split(separator: "/")[1]
        #expect(legacyKey.hasPrefix(plain + "/"))
        try await Self.move(dottedKey, to: legacyKey, pgclone, environment)

        let names = try await pgclone.run(["ls", "--only-db-names"], environment: environment)
        #expect(Self.lines(names.stdout) == [dotted, plain].sorted(), "\(names)")
        let ofPlain = try await pgclone.run(["ls", plain], environment: environment)
        #expect(Self.lines(ofPlain.stdout) == [plainKey], "\(ofPlain)")
        let target = TestEnvironment.uniqueName("legacy")
        for (name, key) in [(plain, plainKey), (dotted, legacyKey)] {
            let restored = try await Self.restore(name, into: target, pgclone, environment)
            #expect(restored.exitCode == 0 && restored.stdout == key + "\n", "\(restored)")
            #expect(try await server.psql("SELECT v FROM t", database: target) == name)
        }
        let pruned = try await pgclone.run(
            ["prune", plain, "--keep-last", "0", "--confirm", "--json"],
            environment: environment
        )
        #expect(pruned.stdout.contains("\"deleted\":[\"\(plainKey)\"]"), "\(pruned)")
        let rest = try await pgclone.run(["ls"], environment: environment)
        #expect(Self.lines(rest.stdout) == [legacyKey], "\(rest)")
        for name in [target, dotted, plain] { try await server.dropDatabase(name) }
    }

    /// A dump copied under another database's key is what it says it is: `restore` and `verify` of
    /// that database pass over it, and `prune`, of one database or of all, neither counts nor
    /// deletes it as either database's, and says so. Names without "_" are named by their keys surely; those
    /// with one could be an earlier release's sanitised names, but not another database's.
    @Test(arguments: ["-", "_"])
    func aDumpCopiedUnderAnotherDatabasesKeyIsNotTakenForItsDumps(separator: String) async throws {
        let (pgclone, environment) = try await Self.setUp(.local)
        let server = pgclone.server
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let (mine, other) = ("mine\(separator)\(suffix)", "other\(separator)\(suffix)")
        try await Self.seed(mine, server)
        try await Self.seed(other, server)
        let mineKeys = [
            try await Self.dump(mine, pgclone, environment), try await Self.dump(mine, pgclone, environment),
        ]
        let otherKey = try await Self.dump(other, pgclone, environment)
        // other's dump under mine's name, and mine's newest under other's, both newer than all.
        let copiedToMine = "\(mine)/20991231T000000.000000Z.default.dump"
        let copiedToOther = "\(other)/20991231T000000.000000Z.default.dump"
        try pgclone.store(try pgclone.storedData(otherKey), as: copiedToMine)
        try pgclone.store(try pgclone.storedData(mineKeys[1]), as: copiedToOther)

        let target = TestEnvironment.uniqueName("copied")
        let restored = try await Self.restore(mine, into: target, pgclone, environment)
        #expect(restored.stdout == mineKeys[1] + "\n", "\(restored)")
        #expect(
            restored.stderr.contains(
                "passed over \(copiedToMine): it is named for \"\(mine)\" but is a dump of \"\(other)\""
            ),
            "\(restored)"
        )
        #expect(try await server.psql("SELECT v FROM t", database: target) == mine)
        let verified = try await pgclone.run(["verify", mine], environment: environment)
        #expect(verified.stdout.hasPrefix(mineKeys[1] + ": OK"), "\(verified)")
        // By its key: the dump's own word on its database, and a warning.
        let byKey = try await pgclone.run(["verify", copiedToMine, "--json"], environment: environment)
        let json = try JSONSerialization.jsonObject(with: Data(byKey.stdout.utf8)) as? [String: Any]
        #expect(json?["database"] as? String == other, "\(byKey)")
        #expect(
            byKey.stderrLines.contains(
                "pgclone: warning: \(copiedToMine) is named for \"\(mine)\" but is a dump of \"\(other)\""
            ),
            "\(byKey)"
        )

        // Restored by its key: as it is, with the same warning.
        let restoredByKey = try await pgclone.run(
            ["restore", copiedToMine, "--database", server.url(target)],
            environment: environment
        )
        #expect(restoredByKey.exitCode == 0, "\(restoredByKey)")
        #expect(
            restoredByKey.stderrLines.contains(
                "pgclone: warning: \(copiedToMine) is named for \"\(mine)\" but is a dump of \"\(other)\""
            ),
            "\(restoredByKey)"
        )
        #expect(try await server.psql("SELECT v FROM t", database: target) == other)

        let one = try await pgclone.run(["prune", mine, "--keep-last", "1", "--json"], environment: environment)
        #expect(one.stdout.contains("\"deleted\":[\"\(mineKeys[0])\"]"), "\(one)")
        // Under mine's key, so prune of mine says why it leaves it, as prune of all does.
        #expect(
            one.stderr.contains(
                "left \(copiedToMine) alone: it is named for \"\(mine)\" but is a dump of \"\(other)\""
            ),
            "\(one)"
        )
        let all = try await pgclone.run(["prune", "--keep-last", "1", "--confirm", "--json"], environment: environment)
        #expect(all.stdout.contains("\"deleted\":[\"\(mineKeys[0])\"]"), "\(all)")
        #expect(
            all.stderr.contains(
                "left \(copiedToOther) alone: it is named for \"\(other)\" but is a dump of \"\(mine)\""
            ),
            "\(all)"
        )
        #expect(pgclone.storedFiles() == [copiedToMine, copiedToOther, mineKeys[1], otherKey].sorted())
        for name in [target, mine, other] { try await server.dropDatabase(name) }
    }

    /// An object S3 will not hand over (archived to Glacier) is taken as its key says where the
    /// key says surely, and left alone where it does not; prune goes on.
    @Test func prunePassesOverWhatS3CannotRead() async throws {
        let (pgclone, environment) = try await Self.setUp(.s3)
        let server = pgclone.server
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let (plain, underscored) = ("glacier-\(suffix)", "glacier_\(suffix)")
        var keys: [String: [String]] = [:]
        for name in [plain, underscored] {
            try await Self.seed(name, server)
            for _ in 0..<2 { keys[name, default: []].append(try await Self.dump(name, pgclone, environment)) }
        }
        let (bucket, prefix) = try #require(Self.bucketAndPrefix(environment["PGCLONE_STORAGE_LOCATION"]!!))
        for name in [plain, underscored] {
            try await S3TestServer.shared!.boto3(
                """
                key = "\(prefix)\(keys[name]![0])"
                s3.copy_object(Bucket="\(bucket)", Key=key, CopySource={"Bucket": "\(bucket)", "Key": key}, \
                StorageClass="GLACIER")
                """
            )
        }
        let pruned = try await pgclone.run(
            ["prune", "--keep-last", "1", "--confirm", "--json"],
            environment: environment
        )
        #expect(pruned.exitCode == 0, "\(pruned)")
        #expect(pruned.stdout.contains("\"deleted\":[\"\(keys[plain]![0])\"]"), "\(pruned)")
        #expect(
            pruned.stderr.contains("could not read \(keys[underscored]![0]) to see which database it is of"),
            "\(pruned)"
        )
        #expect(
            pruned.stderr.contains("left \(keys[underscored]![0]) alone: which database it is of is not known"),
            "\(pruned)"
        )
        let left = try await pgclone.run(["ls"], environment: environment)
        #expect(
            Set(Self.lines(left.stdout)) == [keys[plain]![1], keys[underscored]![0], keys[underscored]![1]],
            "\(left)"
        )
        for name in [plain, underscored] { try await server.dropDatabase(name) }
    }

    @Test func aDumpConfigNameMustFitAKey() async throws {
        let pgclone = try PGCloneHarness.offline()
        let name = String(repeating: "к", count: 32)
        try "dump_configs:\n  \(name): {}\n".write(
            toFile: pgclone.directory + "/pgclone.yaml",
            atomically: true,
            encoding: .utf8
        )
        let result = try await pgclone.run([
            "dump", "--config", name, "--database", "postgresql://nobody@127.0.0.1:1/x",
        ])
        #expect(result.exitCode == 2, "\(result)")
        #expect(
            result.errorLines == [
                """
                pgclone: error: the dump config name \"\(name)\" is longer than 63 bytes; name it with 1 to 63 \
                bytes, as PostgreSQL names things
                """
            ],
            "\(result)"
        )
    }

    /// Renames a stored dump, in the directory or the bucket.
    static func move(
        _ key: String,
        to newKey: String,
        _ pgclone: PGCloneHarness,
        _ environment: [String: String?]
    ) async throws {
        guard let location = environment["PGCLONE_STORAGE_LOCATION"] ?? nil else {
            let data = try pgclone.storedData(key)
            try FileManager.default.removeItem(atPath: pgclone.storage + "/" + key)
            try pgclone.store(data, as: newKey)
            return
        }
        let (bucket, prefix) = try #require(Self.bucketAndPrefix(location))
        try await S3TestServer.shared!.boto3(
            """
            s3.copy_object(Bucket="\(bucket)", Key="\(prefix)\(newKey)", CopySource={"Bucket": "\(bucket)", "Key": \
            "\(prefix)\(key)"})
            s3.delete_object(Bucket="\(bucket)", Key="\(prefix)\(key)")
            """
        )
    }

    static func bucketAndPrefix(_ location: String) -> (String, String)? {
        let path = location.dropFirst("s3://".count)
        guard let slash = path.firstIndex(of: "/") else { return (String(path), "") }
        return (String(path[..<slash]), String(path[path.index(after: slash)...]) + "/")
    }

    /// `anon` leaves out the data of `people`: a restore that asks for `anon` gets none of it,
    /// whichever dump is newer, and retention keeps each config's newest.
    @Test(arguments: Location.allCases)
    func theDumpConfigIsPartOfADumpsIdentity(_ location: Location) async throws {
        let (pgclone, environment) = try await Self.setUp(location)
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("app")
        try await server.createDatabase(source)
        try await server.psql(
            "CREATE TABLE people (name text); INSERT INTO people VALUES ('Ada'), ('Grace')",
            database: source
        )
        try """
        dump_configs:
          anon:
            exclude_tables: [people]
        restore_configs:
          staging:
            dump_config: anon
        """.write(toFile: pgclone.directory + "/pgclone.yaml", atomically: true, encoding: .utf8)
        var keys: [String: [String]] = [:]
        for config in ["anon", "default", "anon", "default"] {
            keys[config, default: []].append(
                try await Self.dump(source, pgclone, environment, config == "anon" ? ["--config", "anon"] : [])
            )
        }
        let target = TestEnvironment.uniqueName("staging")
        for extra in [["--dump-config", "anon"], ["--config", "staging"]] {
            let restored = try await Self.restore(source, into: target, pgclone, environment, extra)
            #expect(restored.exitCode == 0 && restored.stdout == keys["anon"]![1] + "\n", "\(extra): \(restored)")
            #expect(try await server.psql("SELECT count(*) FROM people", database: target) == "0")
        }
        let any = try await Self.restore(source, into: target, pgclone, environment)
        #expect(any.stdout == keys["default"]![1] + "\n", "\(any)")
        #expect(any.stderr.contains("made with dump config \"default\""), "\(any)")
        #expect(try await server.psql("SELECT count(*) FROM people", database: target) == "2")
        let listed = try await pgclone.run(["ls", source, "--dump-config", "anon"], environment: environment)
        #expect(Self.lines(listed.stdout) == keys["anon"]!.reversed(), "\(listed)")
        let verified = try await pgclone.run(["verify", source, "--dump-config", "anon"], environment: environment)
        #expect(verified.stdout.hasPrefix(keys["anon"]![1] + ": OK"), "\(verified)")
        let none = try await Self.restore(source, into: target, pgclone, environment, ["--dump-config", "nightly"])
        #expect(none.exitCode == 1)
        #expect(
            none.errorLines.first?.hasPrefix(
                "pgclone: error: no dumps of database \"\(source)\" made with dump config \"nightly\" in "
            ) == true,
            "\(none)"
        )

        let oneSeries = try await pgclone.run(
            ["prune", "--dump-config", "anon", "--keep-last", "1", "--confirm", "--json"],
            environment: environment
        )
        #expect(oneSeries.stdout.contains("\"deleted\":[\"\(keys["anon"]![0])\"]"), "\(oneSeries)")
        let everySeries = try await pgclone.run(["prune", "--keep-last", "1", "--confirm"], environment: environment)
        #expect(everySeries.exitCode == 0)
        let left = try await pgclone.run(["ls"], environment: environment)
        #expect(Set(Self.lines(left.stdout)) == [keys["anon"]![1], keys["default"]![1]], "\(left)")
        for name in [target, source] { try await server.dropDatabase(name) }
    }
}

/// Enough of JSON to read `ls --json`.
enum JSONValue: Decodable {
    case string(String)
    case number(Double)
    case other

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else {
            self = .other
        }
    }

    var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }
}
