import Foundation
import PGCloneTestSupport
import Testing

/// The committed man page and the README describe the binary as it is: every subcommand and every
/// visible option of the argument parser appears in them. (`bash scripts/man.sh` regenerates the page.)
@Suite struct DocsTests {
    private static let root = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Subcommand name → its visible long options, from the binary's own description of itself.
    private func commands() async throws -> [String: [String]] {
        let result = try await runCommand(TestEnvironment.binary, ["--experimental-dump-help"])
        #expect(result.exitCode == 0, "\(result)")
        let dump = try #require(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let root = try #require(dump["command"] as? [String: Any])
        let subcommands = try #require(root["subcommands"] as? [[String: Any]])
        var commands: [String: [String]] = [:]
        for subcommand in subcommands {
            let name = try #require(subcommand["commandName"] as? String)
            let arguments = subcommand["arguments"] as? [[String: Any]] ?? []
            guard name != "help" else { continue }
            commands[name] = arguments.compactMap { argument in
                guard argument["shouldDisplay"] as? Bool == true,
                    let names = argument["names"] as? [[String: Any]],
                    let long = names.first(where: { $0["kind"] as? String == "long" })?["name"] as? String,
                    long != "help", long != "version"
                else { return nil }
                return long
            }
        }
        return commands
    }

    @Test func theManPageCoversEveryOption() async throws {
        let page = try String(contentsOf: Self.root.appending(path: "docs/pgclone.1"), encoding: .utf8)
        let commands = try await commands()
        #expect(Set(commands.keys) == ["dump", "ls", "restore", "copy", "verify", "prune"])
        let missing = commands.flatMap { name, options in
            ([".It Em \(name)"] + options.map { " -\($0)" }).filter { !page.contains($0) }.map { "\(name): \($0)" }
        }
        #expect(missing.isEmpty, "docs/pgclone.1 is out of date (run bash scripts/man.sh); it lacks \(missing)")
    }

    @Test func theReadmeNamesEveryCommand() async throws {
        let readme = try String(contentsOf: Self.root.appending(path: "README.md"), encoding: .utf8)
        for name in try await commands().keys {
            let shown = readme.contains("pgclone \(name)")
            #expect(shown, "README.md never shows pgclone \(name)")
        }
    }

    /// What the README's two commands say they install is what `scripts/lib.sh` installs: every
    /// Debian package and PyPI requirement, and nothing the README does not name.
    @Test func theReadmeNamesEverythingTheScriptsInstall() async throws {
        let readme = try String(contentsOf: Self.root.appending(path: "README.md"), encoding: .utf8)
        let opening = try #require(readme.components(separatedBy: "pgclone dumps PostgreSQL databases").first)
        let named = Set(opening.split(whereSeparator: { $0.isWhitespace || $0 == "`" || $0 == "," }).map(String.init))
        let listed = try await runCommand(
            "bash",
            ["-c", "source scripts/lib.sh && echo \"${TEST_PACKAGES[*]} ${PYTHON_REQUIREMENTS[*]}\""],
            workingDirectory: Self.root.path()
        )
        #expect(listed.exitCode == 0, "\(listed)")
        let installed = listed.stdout.split(whereSeparator: \.isWhitespace).map(String.init)
        #expect(installed.count > 20)
        let unnamed = installed.filter { !named.contains($0) }
        #expect(unnamed.isEmpty, "README.md does not say that the scripts install \(unnamed)")
    }

    /// dashboards/README.md maps every panel to the metrics its queries read, so a rename shows up
    /// in review: each panel's row names exactly the metrics of its queries.
    @Test func theDashboardsReadmeNamesEachPanelsMetrics() throws {
        let directory = Self.root.appending(path: "dashboards")
        let readme = try String(contentsOf: directory.appending(path: "README.md"), encoding: .utf8)
        let metric = /\b(?:pgclone|process)_[a-z0-9_]+/
        var checked = 0
        for file in ["pgclone-jobs.json", "pgclone-pipeline.json"] {
            let data = try Data(contentsOf: directory.appending(path: file))
            let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            for panel in json["panels"] as? [[String: Any]] ?? [] {
                let title = try #require(panel["title"] as? String)
                let queries = (panel["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String }
                let read = Set(queries.flatMap { $0.matches(of: metric).map { String($0.output) } })
                let row = readme.split(separator: "\n").first { $0.hasPrefix("| \(title) |") }
                let named = Set((row ?? "").matches(of: metric).map { String($0.output) })
                #expect(named == read, "dashboards/README.md, \(file) panel \(title): names \(named), reads \(read)")
                checked += 1
            }
        }
        #expect(checked > 20)
    }
}
