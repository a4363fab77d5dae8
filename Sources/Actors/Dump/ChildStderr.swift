/// What a child process (pg_dump, pg_restore) wrote on stderr, kept within a fixed size: its last
/// lines, and the errors it reported, each with the statement pg_restore shows after it.
///
/// pg_restore can be chatty (one error per object on a database that already has them), so nothing
/// here grows with the amount of output.
package struct ChildStderr: Sendable {
    /// One error line, the TOC entry pg_restore was processing, the server's DETAIL, HINT and
    /// CONTEXT lines under it, and the first line of the statement that caused it.
    package struct Entry: Sendable, Hashable {
        package var message: String
        /// `from TOC entry 215; 1259 16386 TABLE t app`
        package var tocEntry: String?
        package var detail: String?
        package var hint: String?
        package var context: String?
        package var statement: String?

        package init(message: String, tocEntry: String? = nil, detail: String? = nil, hint: String? = nil, context: String? = nil, statement: String? = nil) {
            self.message = message
            self.tocEntry = tocEntry
            self.detail = detail
            self.hint = hint
            self.context = context
            self.statement = statement
        }

        /// The lines shown under the error.
        package var details: [PGCloneError.Detail] {
            [("toc entry", tocEntry), ("detail", detail), ("hint", hint), ("context", context), ("statement", statement)]
                .compactMap { label, text in text.map { PGCloneError.Detail(label, $0) } }
        }
    }

    /// Program name prefix of its lines, `pg_restore: `.
    private let prefix: String
    private var partialLine: [UInt8] = []
    /// Errors reported, all of them counted.
    package private(set) var errorCount = 0
    /// The count pg_restore reports itself ("errors ignored on restore: N"), when it does.
    package private(set) var ignoredErrorCount: Int?
    /// The first ``maximumEntries`` errors.
    package private(set) var entries: [Entry] = []
    /// The last ``maximumTailLines`` lines.
    package private(set) var tail: [String] = []
    /// The last error's lines are still coming (DETAIL, HINT, CONTEXT, `Command was:`).
    private var continuingEntry = false
    /// The last "from TOC entry" line, for the next error.
    private var tocEntry: String?

    static let maximumEntries = 20
    static let maximumTailLines = 20
    static let maximumLineLength = 400

    package init(program: String) {
        prefix = program + ": "
    }

    package mutating func append(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                finishLine()
            } else if partialLine.count < Self.maximumLineLength {
                partialLine.append(byte)
            }
        }
    }

    /// Processes a last line without its newline.
    package mutating func finish() {
        if !partialLine.isEmpty { finishLine() }
    }

    private mutating func finishLine() {
        let line = String(decoding: partialLine, as: UTF8.self)
        partialLine.removeAll(keepingCapacity: true)
        if !line.isEmpty {
            tail.append(line)
            if tail.count > Self.maximumTailLines { tail.removeFirst() }
        }
        if continuingEntry && !line.hasPrefix(prefix) {
            continueEntry(line)
            return
        }
        continuingEntry = false
        if line.hasPrefix(prefix + "from TOC entry ") {
            tocEntry = String(line.dropFirst(prefix.count))
        } else if line.hasPrefix(prefix + "error: ") {
            errorCount += 1
            if entries.count < Self.maximumEntries {
                let message = String(line.dropFirst(prefix.count + "error: ".count)).singleLine
                entries.append(Entry(message: message, tocEntry: tocEntry))
                continuingEntry = true
            }
            tocEntry = nil
        } else if line.hasPrefix(prefix + "warning: errors ignored on restore: ") {
            ignoredErrorCount = Int(line.dropFirst((prefix + "warning: errors ignored on restore: ").count))
        }
    }

    /// A line under an error, which libpq and pg_restore print without the program's prefix: the
    /// server's fields, then the statement (whose later lines are not kept).
    private mutating func continueEntry(_ line: String) {
        let fields: [(String, WritableKeyPath<Entry, String?>)] = [
            ("DETAIL:", \.detail), ("HINT:", \.hint), ("CONTEXT:", \.context), ("Command was:", \.statement),
        ]
        for (label, field) in fields where line.hasPrefix(label) {
            let text = String(line.dropFirst(label.count)).singleLine
            if entries[entries.count - 1][keyPath: field] == nil && !text.isEmpty {
                entries[entries.count - 1][keyPath: field] = text
            }
            return
        }
    }

    /// The most useful single line: the first error, else the last line.
    package var summary: String? {
        entries.first.map(\.message) ?? tail.last.map { line in
            line.hasPrefix(prefix) ? String(line.dropFirst(prefix.count)) : line
        }
    }
}
