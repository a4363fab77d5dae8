/// What a child process (pg_dump, pg_restore) wrote on stderr, kept within a fixed size: its last
/// lines, and the errors it reported, each with the statement pg_restore shows after it.
///
/// pg_restore can be chatty (one error per object on a database that already has them), so nothing
/// here grows with the amount of output. An error is complete once the next line of the program's
/// own comes (or the output ends); ``takeFinished()`` hands complete errors over, to be judged
/// (``record(_:as:)``) while the child still runs.
package struct ChildStderr: Sendable {
    /// One error line, the TOC entry pg_restore was processing, the server's DETAIL, HINT and
    /// CONTEXT lines under it, and the statement that caused it.
    package struct Entry: Sendable, Hashable {
        package var message: String
        /// `from TOC entry 215; 1259 16386 TABLE t app`
        package var tocEntry: String?
        package var detail: String?
        package var hint: String?
        package var context: String?
        /// The statement's first line.
        package var statement: String?
        /// The whole statement, all its lines (`nil` if it was longer than
        /// ``ChildStderr/maximumCommandLength``). Not kept in ``ChildStderr/entries``.
        package var command: String?
        /// Who reported it, if not pg_restore (pgclone's own COPY sessions).
        package var program: String?
        /// pgclone's session running the entry's privileges again was lost, twice: they are undone.
        package var replayLost = false

        package init(
            message: String,
            tocEntry: String? = nil,
            detail: String? = nil,
            hint: String? = nil,
            context: String? = nil,
            statement: String? = nil,
            command: String? = nil
        ) {
            self.message = message
            self.tocEntry = tocEntry
            self.detail = detail
            self.hint = hint
            self.context = context
            self.statement = statement
            self.command = command
        }

        /// The lines shown under the error.
        package var details: [PGCloneError.Detail] {
            [
                ("toc entry", tocEntry), ("detail", detail), ("hint", hint), ("context", context),
                ("statement", statement),
            ]
            .compactMap { label, text in text.map { PGCloneError.Detail(label, $0) } }
        }

        /// The server's message without libpq's and pg_restore's prefixes: `role "r" does not exist`.
        package var serverMessage: String {
            for prefix in ["could not execute query: ERROR: ", "could not execute query: "]
            where message.hasPrefix(prefix) {
                return String(message.dropFirst(prefix.count))
            }
            return message
        }
    }

    /// What an error amounts to, once judged.
    package enum Disposition: Sendable, Hashable {
        /// It fails the run (unless errors are accepted): counted, and kept if among the first.
        case error
        /// The same, but shown as `entry` (what a retry of its statements found).
        case failed(Entry)
        /// Known to do no harm, for `reason` (``KnownRestoreErrors``).
        case harmless(reason: String)
        /// Dealt with, and reported by whoever dealt with it.
        case handled
    }

    /// Program name prefix of its lines, `pg_restore: `.
    private let prefix: String
    private var partialLine: [UInt8] = []
    private var partialLineCut = false
    /// Every error line the child printed.
    package private(set) var reportedErrorCount = 0
    /// Errors judged `.error` (all of them, unless judged otherwise).
    package private(set) var errorCount = 0
    /// The count pg_restore reports itself ("errors ignored on restore: N"), when it does.
    package private(set) var ignoredErrorCount: Int?
    /// The first ``maximumEntries`` errors.
    package private(set) var entries: [Entry] = []
    /// Errors judged harmless, by why.
    package private(set) var harmless: [String: Int] = [:]
    /// The last ``maximumTailLines`` lines.
    package private(set) var tail: [String] = []
    /// The first error saying the server ended a session (FATAL, or the connection closed): not
    /// an error on one statement, whatever else was reported.
    package private(set) var sessionLost: String?
    /// The first entry whose privileges pgclone could not run again for its session was lost
    /// (``Entry/replayLost``): a failure no flag accepts.
    package private(set) var replayLost: String?
    /// Lines of several processes ran into each other (pg_restore `-j`'s workers share its stderr
    /// and write a message's prefix and text apart): an error may have gone uncounted.
    package private(set) var interleaved = false
    /// Lines holding the `error: ` marker that pgclone could not read as the start of an error:
    /// with ``interleaved`` output, an error another process's text ran into. (Every marker
    /// survives: pg_restore writes it in one `write`, its program name and its message in others.
    /// A line with only program names and spaces before it is read as an error.)
    package private(set) var unreadErrorMarkers = 0
    /// The objects whose privileges a REVOKE of the archive's left as they were, in whole or in
    /// part, for they are not the restoring role's (the server's WARNING "no privileges could be
    /// revoked for …", which pg_restore prints only with `--verbose`): the first
    /// ``maximumEntries``, as pg_restore's "creating ACL" line names them (`FUNCTION f(text)`).
    package private(set) var unrevoked: [String] = []
    /// How many such objects there were.
    package private(set) var unrevokedCount = 0
    /// Every such object (not only the first ``maximumEntries``), for those pgclone's own REVOKEs
    /// find too to count once; at most ``maximumUnrevoked``.
    package private(set) var unrevokedSeen: Set<String> = []
    package static let maximumUnrevoked = 100_000
    /// The start of a "creating ACL" line whose object's name holds a newline, to be completed
    /// by the lines after it.
    private var pendingACL: String?
    /// The object of the last "creating ACL" line, for a WARNING after it.
    private var lastACL: String?

    /// The error whose lines are still coming (DETAIL, HINT, CONTEXT, `Command was:`).
    private var current: Entry?
    private var currentCommand: [String]?
    private var commandLength = 0
    /// Complete errors not yet judged.
    private var finished: [Entry] = []
    /// The last "from TOC entry" line, for the next error.
    private var tocEntry: String?

    /// What libpq and the server say when a session ends under a client: a FATAL or PANIC error
    /// (`pg_terminate_backend`, a shutdown, a crash, a timeout), or the connection gone.
    static let sessionLostMarkers = [
        "FATAL:", "PANIC:", "server closed the connection unexpectedly", "no connection to the server",
        "could not send data to server", "could not receive data from server", "connection to server was lost",
        "SSL SYSCALL error", "SSL connection has been closed unexpectedly",
    ]

    static let maximumEntries = 20
    static let maximumTailLines = 20
    static let maximumLineLength = 400
    /// The longest statement kept whole, in bytes: an object's privileges, however many columns.
    package static let maximumCommandLength = 1 << 20

    package init(program: String) {
        prefix = program + ": "
    }

    package mutating func append(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                finishLine()
            } else if partialLine.count < Self.maximumCommandLength {
                partialLine.append(byte)
            } else {
                partialLineCut = true
            }
        }
    }

    /// Processes a last line without its newline, and completes the last error.
    package mutating func finish() {
        if !partialLine.isEmpty { finishLine() }
        finishEntry()
    }

    /// The errors complete since the last call, to be judged with ``record(_:as:)``.
    package mutating func takeFinished() -> [Entry] {
        defer { finished.removeAll() }
        return finished
    }

    /// Counts and keeps `entry` as `disposition` says.
    package mutating func record(_ entry: Entry, as disposition: Disposition) {
        var kept: Entry
        switch disposition {
        case .handled: return
        case .harmless(let reason):
            harmless[reason, default: 0] += 1
            return
        case .error: kept = entry
        case .failed(let shown): kept = shown
        }
        if kept.replayLost, replayLost == nil { replayLost = kept.message }
        errorCount += 1
        if entries.count < Self.maximumEntries {
            kept.command = nil
            entries.append(kept)
        }
    }

    private mutating func finishLine() {
        var line = String(decoding: partialLine, as: UTF8.self)
        let cut = partialLineCut
        partialLine.removeAll(keepingCapacity: partialLine.capacity <= 4096)
        partialLineCut = false
        if !line.isEmpty {
            tail.append(
                line.utf8.count > Self.maximumLineLength
                    ? String(decoding: line.utf8.prefix(Self.maximumLineLength), as: UTF8.self) : line
            )
            if tail.count > Self.maximumTailLines { tail.removeFirst() }
        }
        let program = String(prefix.dropLast())
        if line.hasPrefix(program + program) || line.hasPrefix(program) && !line.hasPrefix(prefix)
            || line.hasPrefix("error: ") || line.hasPrefix(" error: ")
        {
            interleaved = true
        }
        if !line.hasPrefix(prefix + "error: "), let marker = line.firstRange(of: "error: ") {
            if line[..<marker.lowerBound].replacing(program, with: "").allSatisfy({ $0 == " " }) {
                // Only program names and spaces before the marker: another process's ran into
                // this line's start, and the message after the marker (written at once) is whole.
                line = prefix + line[marker.lowerBound...]
            } else {
                unreadErrorMarkers += 1
            }
        }
        if current != nil && !line.hasPrefix(prefix) {
            continueEntry(line, cut: cut)
            return
        }
        if current != nil, currentCommand == nil,
            line.hasPrefix(prefix + "detail: ") || line.hasPrefix(prefix + "hint: ")
        {
            continueEntry(withProgramsDetail: String(line.dropFirst(prefix.count)), cut: cut)
            return
        }
        // pg_dump 12 to 14 print those as errors of their own.
        for (label, detail) in [
            ("error: Error message from server: ", "detail: Error message from server: "),
            ("error: The command was: ", "detail: Command was: "),
        ]
        where current != nil && currentCommand == nil && line.hasPrefix(prefix + label) {
            continueEntry(withProgramsDetail: detail + line.dropFirst(prefix.count + label.count), cut: cut)
            return
        }
        if let pending = pendingACL {
            if line.hasPrefix(prefix) {
                pendingACL = nil
            } else {
                // The rest of a name with a newline, up to the line that ends it.
                let text = pending + "\n" + line
                pendingACL = line.hasSuffix("\"") ? nil : String(text.prefix(Self.maximumLineLength))
                if line.hasSuffix("\"") { lastACL = Self.aclObject(String(text.dropLast())).bounded }
                return
            }
        }
        finishEntry()
        if line.hasPrefix(prefix + "from TOC entry ") {
            tocEntry = String(line.dropFirst(prefix.count)).bounded
        } else if line.hasPrefix(prefix + "error: ") {
            reportedErrorCount += 1
            let message = String(line.dropFirst(prefix.count + "error: ".count)).singleLine.bounded
            if sessionLost == nil, Self.sessionLostMarkers.contains(where: message.contains) { sessionLost = message }
            current = Entry(message: message, tocEntry: tocEntry)
            tocEntry = nil
        } else if line.hasPrefix(prefix + "warning: errors ignored on restore: ") {
            ignoredErrorCount = Int(line.dropFirst((prefix + "warning: errors ignored on restore: ").count))
        } else if line.hasPrefix(prefix + "creating ACL \"") {
            // A name with a newline breaks the line: its object is not known then, and a warning
            // after it is counted under the name the warning gives.
            let text = String(line.dropFirst(prefix.count + "creating ACL \"".count))
            lastACL = text.hasSuffix("\"") ? Self.aclObject(String(text.dropLast())).bounded : nil
            pendingACL = text.hasSuffix("\"") ? nil : text
        } else if let revoked = Self.unrevokedMarkers.first(where: { line.hasPrefix(prefix + $0) }) {
            // An entry's REVOKEs warn one by one: its object counts once.
            let object = lastACL ?? String(line.dropFirst(prefix.count + revoked.count)).singleLine.bounded
            if unrevokedSeen.count < Self.maximumUnrevoked, unrevokedSeen.insert(object).inserted {
                unrevokedCount += 1
                if unrevoked.count < Self.maximumEntries { unrevoked.append(object) }
            }
        }
    }

    /// `FUNCTION public.f(text)` of pg_restore's `public.FUNCTION f(text)` (an ACL entry's
    /// namespace, then its tag: the object's kind and name); as it is without a namespace
    /// (`LANGUAGE plpgsql`).
    package static func aclObject(_ text: String) -> String {
        // The tag starts with the kind of object (pg_dump's dumpACL callers), which a namespace,
        // any text, is not likely to hold after a dot.
        for kind in Self.aclKinds {
            guard let start = text.firstRange(of: "." + kind + " "), start.lowerBound > text.startIndex else {
                continue
            }
            return kind + " " + text[..<start.lowerBound] + "." + text[start.upperBound...]
        }
        return text
    }

    /// The kinds of object an ACL entry's tag names, as pg_dump writes them.
    package static let aclKinds = [
        "FUNCTION", "PROCEDURE", "AGGREGATE", "TABLE", "SEQUENCE", "TYPE", "DOMAIN", "FOREIGN TABLE", "VIEW",
        "MATERIALIZED VIEW", "COLUMN",
    ]

    /// The server's warnings for a REVOKE by a role that does not own the object (`restrict_and_check_grant`).
    static let unrevokedMarkers = [
        "WARNING:  no privileges could be revoked for ", "WARNING:  not all privileges could be revoked for ",
    ]

    private mutating func finishEntry() {
        guard var entry = current else { return }
        if let lines = currentCommand {
            var command = lines
            while command.last?.allSatisfy(\.isWhitespace) == true { command.removeLast() }
            entry.command = command.joined(separator: "\n")
        }
        finished.append(entry)
        current = nil
        currentCommand = nil
    }

    /// A line under an error, which libpq and pg_restore print without the program's prefix: the
    /// server's fields, then the statement, whose lines are kept whole up to a bound.
    private mutating func continueEntry(_ line: String, cut: Bool) {
        if currentCommand != nil {
            commandLength += line.utf8.count + 1
            if cut || commandLength > Self.maximumCommandLength {
                // A cut statement is no statement: the error is complete without it, and the
                // statement's further lines, not being the program's own, are passed over.
                finishEntryWithoutCommand()
            } else {
                currentCommand?.append(line)
            }
            return
        }
        let fields: [(String, WritableKeyPath<Entry, String?>)] = [
            ("DETAIL:", \.detail), ("HINT:", \.hint), ("CONTEXT:", \.context), ("Command was:", \.statement),
        ]
        for (label, field) in fields where line.hasPrefix(label) {
            let text = String(line.dropFirst(label.count))
            if field == \Entry.statement {
                currentCommand = cut ? nil : [String(text.drop { $0 == " " })]
                commandLength = text.utf8.count
                if cut { finishEntryWithoutCommand() }
            }
            let single = text.singleLine.bounded
            if current?[keyPath: field] == nil && !single.isEmpty {
                current?[keyPath: field] = single
            }
            return
        }
    }

    /// A `detail: ` or `hint: ` line the program prints under its own error (pg_dump's "Dumping
    /// the contents of table … failed", the server's message in "Error message from server: …",
    /// the statement in "Command was: …"), as the server's fields are under a statement's error.
    private mutating func continueEntry(withProgramsDetail line: String, cut: Bool) {
        if line.hasPrefix("hint: ") {
            let text = String(line.dropFirst("hint: ".count)).singleLine.bounded
            if current?.hint == nil && !text.isEmpty { current?.hint = text }
            return
        }
        let text = String(line.dropFirst("detail: ".count))
        if text.hasPrefix("Command was: ") {
            continueEntry(text, cut: cut)
        } else if text.hasPrefix("Error message from server: "), let entry = current {
            // The reason of a failure that names only libpq's call ("PQgetResult() failed."):
            // part of the error's message, where a session's end is looked for too.
            let server = String(text.dropFirst("Error message from server: ".count)).singleLine
            current?.message = (entry.message + " " + server).singleLine.bounded
            if sessionLost == nil, Self.sessionLostMarkers.contains(where: server.contains) {
                sessionLost = current?.message
            }
        } else if current?.detail == nil {
            let single = text.singleLine.bounded
            if !single.isEmpty { current?.detail = single }
        }
    }

    /// Completes the current error now, its statement too long to keep whole.
    private mutating func finishEntryWithoutCommand() {
        guard let entry = current else { return }
        finished.append(entry)
        current = nil
        currentCommand = nil
    }

    /// The most useful single line: the first error, else the last line.
    package var summary: String? {
        entries.first.map(\.message)
            ?? tail.last.map { line in
                line.hasPrefix(prefix) ? String(line.dropFirst(prefix.count)) : line
            }
    }
}

extension String {
    /// At most ``ChildStderr/maximumLineLength`` bytes.
    fileprivate var bounded: String {
        utf8.count <= ChildStderr.maximumLineLength
            ? self : String(decoding: utf8.prefix(ChildStderr.maximumLineLength), as: UTF8.self)
    }
}
