package import Logging

/// Leaving out a table's data (`--exclude-table-data`, `--exclude-model`, `exclude_tables`,
/// `exclude_models`) leaves out the data of its partitions and inheritance children too, at every
/// level.
///
/// pg_dump's `--exclude-table-data` matches the named tables only: the rows of a partitioned table
/// live in its partitions, which it would still dump — and those rows are what users exclude as
/// personal data. pg_dump 16 added `--exclude-table-data-and-children`, which pgclone passes where
/// the pg_dump in use has it. With an older pg_dump, pgclone keeps the patterns and adds one exact
/// `--exclude-table-data` for every descendant (over `pg_inherits`, recursively) of every table the
/// patterns match, found in the source's catalog as pg_dump 16 finds them.
package enum TableDataExclusion {
    /// pg_dump's arguments that leave out the data of the tables `patterns` (pg_dump patterns)
    /// match, and of all their partitions and children.
    /// - Parameter source: a connection to the database pg_dump will dump, for an older pg_dump.
    package static func pgDumpArguments(
        patterns: [String],
        tools: PostgresTools,
        source: PostgresConnection,
        logger: Logger
    ) async throws -> [String] {
        guard !patterns.isEmpty else { return [] }
        // Unknown (unparsable output, or pg_dump would not run: the dump itself then says why):
        // the catalog, which works with every version.
        let major = await tools.pgDumpMajorVersion()
        if let major, major >= 16 {
            logger.debug(
                """
                pg_dump \(major) leaves out the data of excluded tables' partitions itself \
                (--exclude-table-data-and-children)
                """
            )
            return patterns.map { "--exclude-table-data-and-children=\($0)" }
        }
        let descendants = try await descendants(of: patterns, in: source)
        if !descendants.isEmpty {
            logger.info(
                "leaving out the data of \(descendants.count) partitions and child tables of the excluded tables too"
            )
            logger.debug("their pg_dump patterns: \(descendants.joined(separator: " "))")
        }
        return (patterns + descendants).map { "--exclude-table-data=\($0)" }
    }

    /// Every partition and inheritance child, at every level, of the tables that `patterns` match
    /// as pg_dump matches them, each as an exact pg_dump pattern (`"schema"."name"`); tables a
    /// pattern matches itself are not repeated.
    package static func descendants(of patterns: [String], in source: PostgresConnection) async throws -> [String] {
        var found: [String] = []
        var seen: Set<String> = []
        for pattern in patterns {
            for table in try await tables(reachedBy: pattern, in: source) where !table.matched {
                let exact = PGDumpNamePattern.exact(schema: table.schema, name: table.name)
                if seen.insert(exact).inserted { found.append(exact) }
            }
        }
        return found
    }

    /// A table a pattern reaches: one it matches, or a partition or child of one, at any level.
    package struct ReachedTable: Sendable, Hashable {
        package var schema: String
        package var name: String
        /// Whether the pattern matches the table itself.
        package var matched: Bool
    }

    /// The tables (and sequences, views, materialized views, foreign tables: whatever pg_dump's
    /// table patterns match) that `pattern` matches as pg_dump matches it, with their partitions
    /// and inheritance children at every level, as `--table-and-children` reaches them. A pattern
    /// pg_dump refuses (more than two dots, or another database's name) reaches nothing: pg_dump
    /// reports it.
    package static func tables(reachedBy pattern: String, in source: PostgresConnection) async throws -> [ReachedTable]
    {
        let parsed = PGDumpNamePattern(pattern)
        guard parsed.dotCount <= 2 else { return [] }
        if let database = parsed.database, database != (await source.databaseName) { return [] }
        // The regular expressions are parameters, never part of the statement's text; every name
        // in it is qualified, as in pg_dump's own query (expand_table_name_patterns), and the
        // search path is the session's own, as pg_dump's `RESET search_path` makes it.
        let rows = try await source.query(
            """
            WITH RECURSIVE tree (relid, depth) AS (
                SELECT c.oid, 0
                FROM pg_catalog.pg_class c
                LEFT JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'S', 'v', 'm', 'f', 'p'])
                  AND c.relname OPERATOR(pg_catalog.~) $1::pg_catalog.text COLLATE pg_catalog.default
                  AND CASE WHEN $2::pg_catalog.text IS NULL THEN pg_catalog.pg_table_is_visible(c.oid)
                      ELSE n.nspname OPERATOR(pg_catalog.~) $2::pg_catalog.text COLLATE pg_catalog.default END
                UNION
                SELECT i.inhrelid, t.depth OPERATOR(pg_catalog.+) 1
                FROM tree t
                JOIN pg_catalog.pg_inherits i ON i.inhparent OPERATOR(pg_catalog.=) t.relid
            )
            SELECT n.nspname, c.relname,
                   c.oid OPERATOR(pg_catalog.=) ANY (SELECT relid FROM tree WHERE depth OPERATOR(pg_catalog.=) 0)
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
            WHERE c.oid OPERATOR(pg_catalog.=) ANY (SELECT relid FROM tree)
            ORDER BY 1, 2
            """,
            [parsed.nameRegex, parsed.schemaRegex],
            cancellable: true
        )
        return rows.compactMap { row in
            guard row.count == 3, let schema = row[0], let name = row[1] else { return nil }
            return ReachedTable(schema: schema, name: name, matched: row[2] == "t")
        }
    }
}

/// A pg_dump table pattern (`[[database.]schema.]name`, as `--table` and `--exclude-table-data`
/// take it) as the regular expressions pg_dump matches names with — the rules of PostgreSQL's
/// `patternToSQLRegex` (fe_utils/string_utils.c) as pg_dump calls it:
///
/// - `*` is `.*` and `?` is `.`; unquoted ASCII letters are lower-cased; `.` separates the parts.
/// - Inside `"…"` everything is literal (`""` is one `"`), regular-expression characters escaped.
/// - Outside quotes other regular-expression characters keep their meaning (`[0-9]`), except `$`,
///   always literal, and `[]`, escaped as pg_dump does.
/// - Each part is anchored: `^(…)$`.
///
/// Without a schema part, pg_dump matches only tables visible on the search path
/// (`pg_table_is_visible`).
package struct PGDumpNamePattern: Sendable, Hashable {
    /// The database part of a three-part pattern, as written (unquoted, lower-cased); pg_dump
    /// refuses a pattern whose database is not the one it dumps.
    package var database: String?
    /// The schema part's regular expression; `nil` when the pattern names no schema.
    package var schemaRegex: String?
    /// The name part's regular expression.
    package var nameRegex: String
    /// How many unquoted `.` the pattern has; pg_dump refuses more than two.
    package var dotCount: Int

    package init(_ pattern: String) {
        let scalars = Array(pattern.unicodeScalars)
        // Up to three parts, as pg_dump parses them: database, schema, name. Dots beyond the
        // third part are kept as they are (and counted).
        var parts = ["^("]
        // The first part as written, for the database name.
        var literal = ""
        var inFirstPart = true
        var inQuotes = false
        var dots = 0
        var index = 0
        func append(_ text: String, literally: String) {
            parts[parts.count - 1] += text
            if inFirstPart { literal += literally }
        }
        while index < scalars.count {
            let scalar = scalars[index]
            let next = index + 1 < scalars.count ? scalars[index + 1] : nil
            if scalar == "\"" {
                if inQuotes && next == "\"" {
                    append("\"", literally: "\"")
                    index += 1
                } else {
                    inQuotes.toggle()
                }
            } else if !inQuotes && ("A"..."Z").contains(scalar) {
                let lower = String(Unicode.Scalar(scalar.value + 32)!)
                append(lower, literally: lower)
            } else if !inQuotes && scalar == "*" {
                append(".*", literally: "*")
            } else if !inQuotes && scalar == "?" {
                append(".", literally: "?")
            } else if !inQuotes && scalar == "." {
                inFirstPart = false
                dots += 1
                if parts.count < 3 {
                    parts[parts.count - 1] += ")$"
                    parts.append("^(")
                } else {
                    parts[parts.count - 1] += "."
                }
            } else if scalar == "$" {
                append("\\$", literally: "$")
            } else {
                let character = String(scalar)
                if inQuotes && "|*+?()[]{}.^$\\".unicodeScalars.contains(scalar) {
                    append("\\" + character, literally: character)
                } else if scalar == "[" && next == "]" {
                    append("\\" + character, literally: character)
                } else {
                    append(character, literally: character)
                }
            }
            index += 1
        }
        parts[parts.count - 1] += ")$"
        nameRegex = parts[parts.count - 1]
        schemaRegex = parts.count >= 2 ? parts[parts.count - 2] : nil
        database = parts.count == 3 ? literal : nil
        dotCount = dots
    }

    /// The pg_dump pattern that matches exactly the table `schema`.`name`, whatever characters
    /// the names hold: `"schema"."name"`, each `"` doubled.
    package static func exact(schema: String, name: String) -> String {
        quoteIdentifier(schema) + "." + quoteIdentifier(name)
    }
}

extension PostgresTools {
    /// The major version of this pg_dump (`pg_dump --version`: `pg_dump (PostgreSQL) 15.18 …` is
    /// 15); `nil` when it does not run or says something else.
    package func pgDumpMajorVersion() async -> Int? {
        if let major { return major }
        return await PostgresInstallations.majorVersion(of: pgDump)
    }

    /// The major version in a client program's `--version` line: the leading digits of the first
    /// word that starts with one (`15.18`, `18.1`, `17devel`, `9.6.24` → 15, 18, 17, 9).
    package static func majorVersion(fromVersionOutput output: String) -> Int? {
        let words = output.split(whereSeparator: { $0.isWhitespace })
        guard let word = words.dropFirst().first(where: { $0.first?.isASCII == true && $0.first?.isNumber == true })
        else {
            return nil
        }
        return Int(word.prefix(while: { $0.isASCII && $0.isNumber }))
    }
}
