import PGCloneActors
import Testing

/// pg_dump patterns become the regular expressions pg_dump itself would match names with
/// (PostgreSQL's patternToSQLRegex, as pg_dump calls it).
@Suite struct TableDataExclusionTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var pattern: String
        var schema: String?
        var name: String
        var database: String? = nil
        var dots = 0
        var testDescription: String { pattern }
    }

    @Test(arguments: [
        // Unqualified: the name only (pg_dump adds the search-path visibility rule).
        Case(pattern: "events_event", schema: nil, name: "^(events_event)$"),
        Case(pattern: "public.events_*", schema: "^(public)$", name: "^(events_.*)$", dots: 1),
        Case(pattern: "*.log?", schema: "^(.*)$", name: "^(log.)$", dots: 1),
        // Unquoted ASCII letters are lower-cased; quoted text is kept as it is.
        Case(pattern: "Events", schema: nil, name: "^(events)$"),
        Case(pattern: "\"Mixed Case\"", schema: nil, name: "^(Mixed Case)$"),
        Case(pattern: "\"My\"Schema.T", schema: "^(Myschema)$", name: "^(t)$", dots: 1),
        Case(pattern: "ÜnïCode", schema: nil, name: "^(Ünïcode)$"),
        // Inside quotes: "" is one quote, and . * ? and the regex characters are literal.
        Case(pattern: "\"a\"\"b\"", schema: nil, name: "^(a\"b)$"),
        Case(pattern: "\"we.ird\"", schema: nil, name: "^(we\\.ird)$"),
        Case(pattern: "\"a*b?(c)|[d]{e}^f\\\"", schema: nil, name: "^(a\\*b\\?\\(c\\)\\|\\[d\\]\\{e\\}\\^f\\\\)$"),
        // Outside quotes regex characters keep their meaning, except $ (always literal) and [].
        Case(pattern: "part_[0-9]+", schema: nil, name: "^(part_[0-9]+)$"),
        Case(pattern: "x$y", schema: nil, name: "^(x\\$y)$"),
        Case(pattern: "\"x$y\"", schema: nil, name: "^(x\\$y)$"),
        Case(pattern: "int[]", schema: nil, name: "^(int\\[])$"),
        // database.schema.name, and the extra dots pg_dump refuses.
        Case(pattern: "Shop.public.t", schema: "^(public)$", name: "^(t)$", database: "shop", dots: 2),
        Case(pattern: "a.b.c.d", schema: "^(b)$", name: "^(c.d)$", database: "a", dots: 3),
        Case(pattern: "public.", schema: "^(public)$", name: "^()$", dots: 1),
    ])
    func patternsBecomePgDumpsRegularExpressions(_ test: Case) {
        let parsed = PGDumpNamePattern(test.pattern)
        #expect(parsed.schemaRegex == test.schema)
        #expect(parsed.nameRegex == test.name)
        #expect(parsed.database == test.database)
        #expect(parsed.dotCount == test.dots)
    }

    /// A descendant is passed to pg_dump as a quoted pattern that matches its names exactly,
    /// whatever they contain.
    @Test(arguments: [
        ("public", "events_2024", "\"public\".\"events_2024\"", "^(public)$", "^(events_2024)$"),
        ("Mixed Case", "Ev.\"EU\"", "\"Mixed Case\".\"Ev.\"\"EU\"\"\"", "^(Mixed Case)$", "^(Ev\\.\"EU\")$"),
        ("s$", "a*b?[c]", "\"s$\".\"a*b?[c]\"", "^(s\\$)$", "^(a\\*b\\?\\[c\\])$"),
    ])
    func exactPatternsMatchOneTable(
        schema: String,
        name: String,
        pattern: String,
        schemaRegex: String,
        nameRegex: String
    ) {
        let exact = PGDumpNamePattern.exact(schema: schema, name: name)
        #expect(exact == pattern)
        let parsed = PGDumpNamePattern(exact)
        #expect(parsed.schemaRegex == schemaRegex)
        #expect(parsed.nameRegex == nameRegex)
        #expect(parsed.dotCount == 1)
    }

    @Test func pgDumpsMajorVersionIsReadFromItsVersionLine() {
        #expect(
            PostgresTools.majorVersion(fromVersionOutput: "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n") == 15
        )
        #expect(PostgresTools.majorVersion(fromVersionOutput: "pg_dump (PostgreSQL) 18.1\n") == 18)
        #expect(PostgresTools.majorVersion(fromVersionOutput: "pg_dump (PostgreSQL) 17devel\n") == 17)
        #expect(PostgresTools.majorVersion(fromVersionOutput: "pg_dump (PostgreSQL) 9.6.24\n") == 9)
        #expect(PostgresTools.majorVersion(fromVersionOutput: "") == nil)
        #expect(PostgresTools.majorVersion(fromVersionOutput: "pg_dump: not a version") == nil)
    }
}
