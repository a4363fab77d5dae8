import Foundation

/// The AWS credential chain, in the SDKs' order — environment variables, then the shared
/// `credentials`/`config` files' profile — resolved on first use and cached; temporary credentials
/// are fetched again shortly before they expire, so a long transfer keeps working.
package actor AWSCredentialsProvider {
    private let environment: [String: String]
    private let files: AWSSharedFiles
    private var cached: AWSCredentials?
    /// Fetch again this long before the expiry.
    private let refreshMargin: TimeInterval = 300

    package init(environment: [String: String], files: AWSSharedFiles) {
        self.environment = environment
        self.files = files
    }

    package func credentials() async throws -> AWSCredentials {
        if let cached, cached.expiration.map({ $0.timeIntervalSinceNow > refreshMargin }) ?? true {
            return cached
        }
        let fresh = try await resolve()
        cached = fresh
        return fresh
    }

    /// Forgets cached credentials (after the server rejected them).
    package func invalidate() {
        cached = nil
    }

    private func resolve() async throws -> AWSCredentials {
        var tried: [String] = []
        if let key = value("AWS_ACCESS_KEY_ID") {
            guard let secret = value("AWS_SECRET_ACCESS_KEY") else {
                throw PGCloneError(.invalidConfiguration, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
            }
            return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN"), source: "environment")
        }
        tried.append("environment (AWS_ACCESS_KEY_ID)")

        let profile = "profile \"\(files.profile)\" (\(files.credentialsPath), \(files.configPath))"
        if let key = files.settings["aws_access_key_id"] {
            guard let secret = files.settings["aws_secret_access_key"] else {
                throw PGCloneError(.invalidConfiguration, "\(profile) has aws_access_key_id but no aws_secret_access_key")
            }
            return AWSCredentials(
                accessKeyID: key,
                secretAccessKey: secret,
                sessionToken: files.settings["aws_session_token"],
                source: profile
            )
        }
        tried.append(profile)
        throw PGCloneError(
            .invalidConfiguration,
            "no AWS credentials found; tried \(tried.joined(separator: ", ")); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
        )
    }

    private func value(_ name: String) -> String? {
        environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }
}
