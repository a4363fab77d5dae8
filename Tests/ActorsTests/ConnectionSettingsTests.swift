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
        let settings = try ConnectionSettings(
            conninfo: #"dbname='it\'s' application_name='a\\b c'"#,
            from: "--database"
        )
        .replacingDatabase(#"o'neil\x"#)
        #expect(settings.childConnectionString == #"application_name='a\\b c' dbname='o\'neil\\x'"#)
        // libpq reads back exactly the values.
        let reparsed = try ConnectionSettings(conninfo: settings.childConnectionString, from: "test")
        #expect(reparsed.value(for: "dbname") == #"o'neil\x"#)
        #expect(reparsed.value(for: "application_name") == #"a\b c"#)
    }

    @Test func invalidStringsSayWhereTheyCameFrom() throws {
        #expect(throws: PGCloneError.self) { try ConnectionSettings(conninfo: "host=x port", from: "DATABASE_URL") }
        do {
            _ = try ConnectionSettings(conninfo: "postgresql://[bad", from: "DATABASE_URL")
            Issue.record("should not parse")
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(error.message.hasPrefix("invalid connection string in DATABASE_URL: "))
        }
        // A port libpq would refuse only when connecting, as if the server had.
        for conninfo in ["postgresql://app:pw@127.0.0.1:notaport/big", "host=a,b port=5432,70000"] {
            do {
                _ = try ConnectionSettings(conninfo: conninfo, from: "--database")
                Issue.record("should not parse: \(conninfo)")
            } catch {
                #expect(error.code == .invalidConfiguration)
                #expect(
                    error.message.hasPrefix("the port in the connection string in --database is \""),
                    "\(error.message)"
                )
                #expect(!error.message.contains("pw"))
            }
        }
        #expect(
            try ConnectionSettings(conninfo: "host=a,b port=5432,", from: "--database").value(for: "port") == "5432,"
        )
    }

    /// Session settings pgclone adds come after the user's options, wherever those were given.
    @Test func sessionSettingsFollowTheUsersOptions() throws {
        let added = [(name: "synchronous_commit", value: "off")]
        let plain = try ConnectionSettings(conninfo: "dbname=d", from: "--database")
        #expect(
            plain.addingSessionSettings(added, environment: [:]).value(for: "options") == "-c synchronous_commit=off"
        )
        #expect(
            plain.addingSessionSettings(added, environment: ["PGOPTIONS": "-c work_mem=7MB"]).value(for: "options")
                == "-c work_mem=7MB -c synchronous_commit=off"
        )
        let explicit = try ConnectionSettings(conninfo: "dbname=d options='-c search_path=x'", from: "--database")
        #expect(
            explicit.addingSessionSettings(added, environment: ["PGOPTIONS": "-c work_mem=7MB"]).value(for: "options")
                == "-c search_path=x -c synchronous_commit=off"
        )
    }
}
