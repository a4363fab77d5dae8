import PGCloneActors
import PGCloneStreams
import Testing

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
        #expect(DatabaseAdmin.valueElements(of: DatabaseSetting(role: nil, name: name, value: value)) == elements)
    }
}
