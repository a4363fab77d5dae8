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
