import Foundation
import Subprocess
import SystemPackage

/// What a command did: its exit code (128 + N for signal N), stdout and stderr.
package struct CommandResult: Sendable, CustomStringConvertible {
    package var exitCode: Int32
    package var stdout: String
    package var stderr: String

    /// stderr's lines.
    package var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }
    /// Lines starting `pgclone: error:`.
    package var errorLines: [String] { stderrLines.filter { $0.hasPrefix("pgclone: error:") } }

    package var description: String { "exit \(exitCode)\nstdout:\n\(stdout)\nstderr:\n\(stderr)" }
}

/// Runs a program to completion, collecting its output.
package func runCommand(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String?] = [:],
    workingDirectory: String? = nil,
    input: String? = nil
) async throws -> CommandResult {
    var updates: [Environment.Key: String?] = [:]
    for (name, value) in environment { updates[Environment.Key(stringLiteral: name)] = value }
    let exe: Executable = executable.contains("/") ? .path(FilePath(executable)) : .name(executable)
    let result = try await Subprocess.run(
        exe,
        arguments: Arguments(arguments),
        environment: .inherit.updating(updates),
        workingDirectory: workingDirectory.map { FilePath($0) },
        input: .string(input ?? ""),
        output: .string(limit: 64 << 20),
        error: .string(limit: 64 << 20)
    )
    let code: Int32
    switch result.terminationStatus {
    case .exited(let value): code = value
    case .signaled(let signal): code = 128 + signal
    }
    return CommandResult(exitCode: code, stdout: result.standardOutput, stderr: result.standardError)
}

/// Runs the pgclone under test in `directory` (so no stray pgclone.yaml applies), with the
/// variables that would otherwise leak in from the test's environment cleared.
package func pgclone(
    _ arguments: [String],
    in directory: String,
    environment: [String: String?] = [:]
) async throws -> CommandResult {
    var clean: [String: String?] = [
        "DATABASE_URL": nil, "PGCLONE_STORAGE_LOCATION": nil, "PGCLONE_CONFIG_FILE": nil, "PGCLONE_MEMORY_LIMIT": nil,
        "PGCLONE_ALLOW_DUMP": nil, "PGCLONE_ALLOW_RESTORE": nil, "PGCLONE_MAINTENANCE_DB": nil, "PGPASSFILE": nil,
        "PGPASSWORD": nil, "PGDATABASE": nil,
        "PGHOST": nil, "PGPORT": nil, "PGUSER": nil, "PGCLONE_PG_BIN_DIR": nil,
        "AWS_ACCESS_KEY_ID": nil, "AWS_SECRET_ACCESS_KEY": nil, "AWS_SESSION_TOKEN": nil, "AWS_PROFILE": nil,
        "AWS_DEFAULT_PROFILE": nil, "AWS_REGION": nil, "AWS_DEFAULT_REGION": nil, "AWS_ENDPOINT_URL": nil,
        "AWS_ENDPOINT_URL_S3": nil, "PGCLONE_S3_ENDPOINT_URL": nil, "PGCLONE_S3_PART_SIZE": nil,
        "PGCLONE_S3_PARTS_IN_FLIGHT": nil, "PGCLONE_S3_STALL_TIMEOUT": nil, "PGCLONE_S3_PARTS_PER_SIZE": nil,
        "AWS_CA_BUNDLE": nil, "AWS_WEB_IDENTITY_TOKEN_FILE": nil, "AWS_ROLE_ARN": nil,
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": nil, "AWS_CONTAINER_CREDENTIALS_FULL_URI": nil,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": nil, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": nil,
        // Never a real metadata service: an address nothing listens on fails at once.
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9", "AWS_ENDPOINT_URL_STS": nil,
        // Never the machine's own ~/.aws files.
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials", "AWS_CONFIG_FILE": "/nonexistent/config",
    ]
    for (name, value) in environment { clean[name] = value }
    return try await runCommand(TestEnvironment.binary, arguments, environment: clean, workingDirectory: directory)
}
