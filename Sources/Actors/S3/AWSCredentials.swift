package import Foundation
import PGCloneStreams

/// AWS credentials: a key pair, and for temporary credentials a session token and expiry.
package struct AWSCredentials: Sendable, Hashable {
    package var accessKeyID: String
    package var secretAccessKey: String
    package var sessionToken: String?
    package var expiration: Date?
    /// Where they came from, for messages: `environment`, `profile "default" (~/.aws/credentials)`…
    package var source: String

    package init(
        accessKeyID: String,
        secretAccessKey: String,
        sessionToken: String? = nil,
        expiration: Date? = nil,
        source: String
    ) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
        self.source = source
    }
}

/// The AWS shared `config` and `credentials` files, read as the AWS CLI reads them.
package struct AWSSharedFiles: Sendable {
    /// Settings of the selected profile: credentials file first, then config file.
    package var settings: [String: String] = [:]
    package var profile: String
    /// Where the profile's name came from (`AWS_PROFILE`, `AWS_DEFAULT_PROFILE`), `nil` for `default`.
    package var profileOrigin: String?
    /// Whether either file has a section for the profile.
    package var profileExists: Bool
    package var credentialsPath: String
    package var configPath: String

    package init(environment: [String: String]) {
        let home = environment["HOME"] ?? NSHomeDirectory()
        let named = ["AWS_PROFILE", "AWS_DEFAULT_PROFILE"].lazy.compactMap { variable in
            environment[variable].flatMap { $0.isEmpty ? nil : (variable, $0) }
        }.first
        profile = named?.1 ?? "default"
        profileOrigin = named?.0
        credentialsPath =
            environment["AWS_SHARED_CREDENTIALS_FILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "\(home)/.aws/credentials"
        configPath = environment["AWS_CONFIG_FILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "\(home)/.aws/config"
        let configSection = profile == "default" ? "default" : "profile \(profile)"
        let config = Self.parse(path: configPath)[configSection]
        let credentials = Self.parse(path: credentialsPath)[profile]
        profileExists = config != nil || credentials != nil
        settings = (config ?? [:]).merging(credentials ?? [:]) { _, fromCredentials in fromCredentials }
    }

    package var region: String? { settings["region"] }

    /// INI sections of a file: `[name]` then `key = value` lines; `#` and `;` start comments.
    static func parse(path: String) -> [String: [String: String]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                current = line.dropFirst().dropLast().trimmingWhitespace()
                continue
            }
            guard let section = current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingWhitespace().lowercased()
            let value = line[line.index(after: equals)...].trimmingWhitespace()
            sections[section, default: [:]][key] = value
        }
        return sections
    }
}
