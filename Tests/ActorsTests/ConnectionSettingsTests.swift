import PGCloneActors
import PGCloneStreams
import Testing

@Suite struct ConnectionSettingsTests {
    @Test func aURIsPasswordGoesToTheEnvironmentNeverArgv() throws {
        let settings = try ConnectionSettings(
            conninfo: "postgresql://app:s3cr%27et@db.internal:6543/shop?sslmode=require",
            from: "DATABASE_URL"
        )
        #expect(settings.value(for: "password") == "s3cr'et")
        #expect(settings.childEnvironment == ["PGPASSWORD": "s3cr'et"])
        #expect(!settings.childConnectionString.contains("s3cr"))
        #expect(settings.childConnectionString.contains("dbname='shop'"))
        #expect(settings.childConnectionString.contains("host='db.internal'"))
        #expect(settings.childConnectionString.contains("sslmode='require'"))
        #expect(!settings.redactedDescription.contains("s3cr"))
    }

    @Test func aBareNameIsADatabaseAsInPsql() throws {
        let settings = try ConnectionSettings(conninfo: "shop", from: "--database")
        #expect(settings.parameters.map(\.keyword) == ["dbname"])
        #expect(settings.value(for: "dbname") == "shop")
        #expect(try ConnectionSettings(conninfo: "", from: "--database").parameters.isEmpty)
    }

    @Test func valuesAreQuotedForLibpq() throws {
        let settings = try ConnectionSettings(conninfo: #"dbname='it\'s' application_name='a\\b c'"#, from: "--database")
            .replacingDatabase(#"o'neil\x"#)
        #expect(settings.childConnectionString == #"application_name='a\\b c' dbname='o\'neil\\x'"#)
        // libpq reads back exactly the values.
        let reparsed = try ConnectionSettings(conninfo: settings.childConnectionString, from: "test")
        #expect(reparsed.value(for: "dbname") == #"o'neil\x"#)
        #expect(reparsed.value(for: "application_name") == #"a\b c"#)
    }

    @Test func invalidStringsSayWhereTheyCameFrom() {
        #expect(throws: PGCloneError.self) { try ConnectionSettings(conninfo: "host=x port", from: "DATABASE_URL") }
        do {
            _ = try ConnectionSettings(conninfo: "postgresql://[bad", from: "DATABASE_URL")
            Issue.record("should not parse")
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(error.message.hasPrefix("invalid connection string in DATABASE_URL: "))
        }
    }
}

@Suite struct SwapNamingTests {
    @Test func derivedNamesMustFit63Bytes() throws {
        let fits = String(repeating: "a", count: 53)
        #expect(try DatabaseNames(target: fits).temporary == fits + "__temp")
        #expect(throws: PGCloneError.self) { try DatabaseNames(target: fits + "a") }
        // Bytes, not characters: 27 two-byte characters are 54 bytes.
        #expect(throws: PGCloneError.self) { try DatabaseNames(target: String(repeating: "é", count: 27)) }
        #expect(throws: PGCloneError.self) { try DatabaseNames(target: "") }
    }

    @Test(arguments: [
        ("search_path", "app, public", ["app", "public"]),
        ("search_path", #""My Schema", public"#, ["My Schema", "public"]),
        ("search_path", #""$user", public"#, ["$user", "public"]),
        ("search_path", #""a""b", c"#, [#"a"b"#, "c"]),
        ("temp_tablespaces", "", [""]),
        ("work_mem", "64MB", ["64MB"]),
        ("application_name", "a, b", ["a, b"]),
    ])
    func listSettingsSplitIntoOneLiteralPerElement(name: String, value: String, elements: [String]) {
        #expect(DatabaseSwap.valueElements(of: DatabaseSetting(role: nil, name: name, value: value)) == elements)
    }
}

@Suite struct ChildStderrTests {
    @Test func errorsAreCountedAndKeptWithTheirStatements() {
        var log = ChildStderr(program: "pg_restore")
        let text = """
            pg_restore: while PROCESSING TOC:
            pg_restore: from TOC entry 215; 1259 16386 TABLE t app
            pg_restore: error: could not execute query: ERROR:  relation "t" already exists
            Command was: CREATE TABLE public.t (
                v integer
            );


            pg_restore: error: could not execute query: ERROR:  role "r" does not exist
            Command was: CREATE POLICY p ON public.t TO r USING (true);
            pg_restore: warning: errors ignored on restore: 2
            """
        // Split across arbitrary chunk boundaries, as a pipe delivers it.
        let bytes = Array(text.utf8)
        for start in stride(from: 0, to: bytes.count, by: 7) {
            log.append(bytes[start..<min(start + 7, bytes.count)])
        }
        log.finish()
        #expect(log.errorCount == 2)
        #expect(log.ignoredErrorCount == 2)
        #expect(log.entries.map(\.message) == [
            #"could not execute query: ERROR: relation "t" already exists"#,
            #"could not execute query: ERROR: role "r" does not exist"#,
        ])
        #expect(log.entries.map(\.statement) == ["CREATE TABLE public.t (", "CREATE POLICY p ON public.t TO r USING (true);"])
        #expect(log.summary == #"could not execute query: ERROR: relation "t" already exists"#)
    }

    @Test func outputStaysBounded() {
        var log = ChildStderr(program: "pg_restore")
        for index in 0..<10_000 {
            log.append(Array("pg_restore: error: failure \(index) \(String(repeating: "x", count: 1000))\n".utf8))
        }
        #expect(log.errorCount == 10_000)
        #expect(log.entries.count == 20)
        #expect(log.tail.count == 20)
        #expect(log.tail.allSatisfy { $0.utf8.count <= 400 })
    }
}

@Suite struct MemoryBudgetTests {
    @Test func theDefaultBudgetFitsIn64MiB() throws {
        let budget = try MemoryBudget()
        #expect(budget.streamCapacity == .mebibytes(2))
        #expect(budget.decompression.windowLogMax == 23)
        #expect(budget.compression.workers == 2)
        #expect(budget.restoreTerms.map(\.bytes).reduce(0, +) < 16 << 20)
    }

    @Test func smallerLimitsScaleEveryTermDown() throws {
        let budget = try MemoryBudget(limit: .mebibytes(16))
        #expect(budget.streamCapacity == .kibibytes(512))
        #expect(budget.decompression.windowLogMax == 21)
        #expect(budget.compression.workers == 0)
        #expect(throws: PGCloneError.self) { try MemoryBudget(limit: .mebibytes(15)) }
    }
}
