/// Masks, line by line, the secrets of output whose value is not on its name's line (a hook's
/// output, which ``URLPassword/redactingAll(in:)`` masks one line at a time):
/// - YAML's block scalar after a secret's name (`password: |`, `key: >-`): its lines, more indented
///   than the name, are written `****`;
/// - a list item that names a secret and gives its value apart, as Kubernetes' and Helm's `env`
///   (`- name: DB_PASSWORD` then `value: x`) and Ansible's `key:`/`value:` pairs do, on one line
///   (`{"name": "DB_PASSWORD", "value": "x"}`) or on several.
package struct MultilineSecrets: Sendable {
    /// The indentation of the name whose block scalar is being masked.
    private var blockIndent: Int?
    /// The column of the `name:` (or `key:`) naming a secret whose `value:` is still to come.
    private var itemColumn: Int?

    package init() {}

    /// `line` (one line, without its newline) masked: by ``URLPassword/redactingAll(in:)``, and
    /// as the lines before it say.
    package mutating func redacting(_ line: String) -> String {
        let indent = line.prefix { $0 == " " }.count
        let blank = line.allSatisfy(\.isWhitespace)
        if let block = blockIndent {
            if blank { return line }
            if indent > block { return String(repeating: " ", count: indent) + "****" }
            blockIndent = nil
        }
        var shown = URLPassword.redactingAll(in: line)
        // A CRLF line's carriage return, as pgclone shows it (escaped), is not part of it.
        let body = line.hasSuffix("\\r") ? line.dropLast(2) : line[...]
        if let column = itemColumn, !blank {
            let rest = body.dropFirst(indent)
            let item = rest.hasPrefix("- ")
            // A Terraform plan's `+ ` or `~ ` before an attribute is not its indentation.
            let marker =
                rest.hasPrefix("+ ") || rest.hasPrefix("~ ") ? 1 + rest.dropFirst().prefix { $0 == " " }.count : 0
            if item || indent + marker < column {
                itemColumn = nil
            } else if indent + marker == column, let value = body.firstMatch(of: Self.valueLine) {
                let range = value.output.value.startIndex..<value.output.value.endIndex
                itemColumn = nil
                // A block scalar's lines are the value (`value: |`).
                if value.output.value.first == "|" || value.output.value.first == ">" { blockIndent = column }
                return String(line[..<range.lowerBound]) + Self.masked(value.output.value) + line[range.upperBound...]
            }
        }
        if let block = body.wholeMatch(of: Self.blockScalar), URLPassword.namesSecret(Self.unquoted(block.output.name))
        {
            blockIndent = block.output.indent.count + (block.output.dash?.count ?? 0)
        } else if let item = body.wholeMatch(of: Self.namingLine),
            URLPassword.namesSecret(Self.unquoted(item.output.secret))
        {
            itemColumn = item.output.indent.count + (item.output.dash?.count ?? 0)
        } else if shown.contains("{") {
            // Each item of a line's list on its own (`[{"name":"A","value":"1"},{"name":…}]`).
            shown = shown.replacing(Self.item) { item in Self.maskingValue(in: item.output) }
        } else {
            shown = Self.maskingValue(in: shown[...])
        }
        return shown
    }

    /// `item` with its value masked if its name says it is a secret.
    private static func maskingValue(in item: Substring) -> String {
        guard let naming = item.firstMatch(of: namingPair), URLPassword.namesSecret(naming.output.secret) else {
            return String(item)
        }
        return String(item.replacing(valuePair) { pair in String(pair.output.head) + masked(pair.output.value) })
    }

    /// The innermost `{…}` of a line.
    nonisolated(unsafe) private static let item = #/\{[^{}]*\}/#

    /// `value` as `****`, its quotes kept; shown if it says there is none (`""`, `null`) or is
    /// a reference (`$(…)`, `${…}`, a Helm template's `{{ … }}`).
    private static func masked(_ value: Substring) -> String {
        let quote =
            value.count >= 2 && value.first == value.last
            ? value.first.flatMap { $0 == "\"" || $0 == "'" ? String($0) : nil } ?? "" : ""
        let inner = quote.isEmpty ? value : value.dropFirst().dropLast()
        if inner.isEmpty || URLPassword.isNoValue(inner) || URLPassword.isReference(inner) || inner.hasPrefix("{{") {
            return String(value)
        }
        return quote + "****" + quote
    }

    private static func unquoted(_ name: Substring) -> Substring {
        name.first == "\"" || name.first == "'" ? name.dropFirst().dropLast() : name
    }

    /// `  password: |`, `- token: >-2 # comment`: a name whose value is a block scalar.
    nonisolated(unsafe) private static let blockScalar =
        #/
        (?<indent> \ * ) (?<dash> -\ + )?
        (?<name> "[^"]+" | '[^']+' | [A-Za-z_][A-Za-z0-9_.-]* ) [\ \t]* : [\ \t]+ [|>] [-+0-9]* [\ \t]* (?: \#.* )?
        /#

    /// `- name: DB_PASSWORD`, `  key: "api_token"`, `"Name": "/prod/db_password",` (JSON, as
    /// `kubectl -o json` and the AWS CLI print it), `+ name = "DB_PASSWORD"` (a Terraform plan's
    /// attribute, added or changed): an item naming a secret, its value below.
    nonisolated(unsafe) private static let namingLine =
        #/
        (?<indent> \ * ) (?<dash> [-+~]\ + )?
        (?<quote> ["']? ) (?: name | key | Name | Key | ParameterKey ) \k<quote> [\ \t]* [:=] [\ \t]+
        (?<secret> "[A-Za-z_/][A-Za-z0-9_./-]*" | '[A-Za-z_/][A-Za-z0-9_./-]*' | [A-Za-z_/][A-Za-z0-9_./-]* )
        [\ \t]* ,? [\ \t]*
        /#

    /// `value: x` (`Value`, `ParameterValue`; Terraform's `+ value = "x"`, `~ value = "a" -> "b"`)
    /// on the line after its item's name.
    nonisolated(unsafe) private static let valueLine =
        #/
        ^ \ * (?: [+~]\ + )? (?<quote> ["']? ) (?: value | Value | ParameterValue ) \k<quote> [\ \t]* [:=] [\ \t]+
        (?<value> "(?:[^"\\]|\\.)*" | '(?:[^']|'')*' | [^\s] (?: .*? [^\s] )? ) ,? (?: [\ \t]+ \#.* )? [\ \t]* $
        /#

    /// `"name": "DB_PASSWORD"` (or `name: X`, `key=X`) inside one line's item.
    nonisolated(unsafe) private static let namingPair =
        #/
        ["']? \b (?: name | key | Name | Key ) \b ["']? [\ \t]* [:=] [\ \t]* ["']?
        (?<secret> [A-Za-z_/][A-Za-z0-9_./-]* ) ["']?
        [\ \t]* [,}\]]
        /#

    /// `"value": "x"`, `value: x` inside one line's item, to the next `,` or `}`.
    nonisolated(unsafe) private static let valuePair =
        #/
        (?<head> ["']? \b (?: value | Value ) \b ["']? [\ \t]* [:=] [\ \t]* )
        (?<value> "(?:[^"\\]|\\.)*" | '(?:[^'\\]|\\.)*' | [^\s,}\]"'] [^,}\]]* )
        /#
}
