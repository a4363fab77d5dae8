import Foundation
package import Logging

/// The AWS credential chain, in the SDKs' order — environment variables; the shared
/// `credentials`/`config` files' profile; web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` and
/// `AWS_ROLE_ARN`, as Kubernetes IRSA sets them) through STS; the container endpoint (ECS, EKS Pod
/// Identity); EC2 instance metadata (IMDSv2) — resolved on first use and cached. Temporary
/// credentials are fetched again shortly before they expire, so a long transfer keeps working.
package actor AWSCredentialsProvider {
    private let environment: [String: String]
    private let files: AWSSharedFiles
    private var cached: AWSCredentials?
    /// Fetch again this long before the expiry.
    private let refreshMargin: TimeInterval = 300

    private let logger: Logger

    package init(environment: [String: String], files: AWSSharedFiles, logger: Logger) {
        self.environment = environment
        self.files = files
        self.logger = logger
    }

    package func credentials() async throws -> AWSCredentials {
        if let cached, cached.expiration.map({ $0.timeIntervalSinceNow > refreshMargin }) ?? true {
            return cached
        }
        let fresh = try await resolve()
        cached = fresh
        logger.debug(
            "using AWS credentials from \(fresh.source)",
            metadata: fresh.expiration.map { ["expires": "\($0)"] } ?? [:]
        )
        return fresh
    }

    private func resolve() async throws -> AWSCredentials {
        // As the AWS CLI: a profile named but not there is an error, whatever else there is (its
        // endpoint or region would be missed).
        try checkProfileExists()
        var tried: [String] = []
        if let key = value("AWS_ACCESS_KEY_ID") {
            guard let secret = value("AWS_SECRET_ACCESS_KEY") else {
                throw S3ClientError(.configuration, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
            }
            return AWSCredentials(
                accessKeyID: key,
                secretAccessKey: secret,
                sessionToken: value("AWS_SESSION_TOKEN"),
                source: "environment"
            )
        }
        tried.append("environment (AWS_ACCESS_KEY_ID)")

        let profile = "profile \"\(files.profile)\" (\(files.credentialsPath), \(files.configPath))"
        if let key = files.settings["aws_access_key_id"] {
            guard let secret = files.settings["aws_secret_access_key"] else {
                throw S3ClientError(.configuration, "\(profile) has aws_access_key_id but no aws_secret_access_key")
            }
            return AWSCredentials(
                accessKeyID: key,
                secretAccessKey: secret,
                sessionToken: files.settings["aws_session_token"],
                source: profile
            )
        }
        tried.append(profile)
        let tokenFile = value("AWS_WEB_IDENTITY_TOKEN_FILE") ?? files.settings["web_identity_token_file"]
        let roleARN = value("AWS_ROLE_ARN") ?? files.settings["role_arn"]
        try checkProfileIsUsable(hasWebIdentity: tokenFile != nil)

        let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? files.region ?? "us-east-1"
        if let tokenFile, let roleARN {
            return try await AWSCredentialSources.webIdentity(
                tokenFile: tokenFile,
                roleARN: roleARN,
                sessionName: value("AWS_ROLE_SESSION_NAME") ?? files.settings["role_session_name"] ?? "pgclone",
                endpoint: value("AWS_ENDPOINT_URL_STS") ?? value("AWS_ENDPOINT_URL")
                    ?? "https://sts.\(region).amazonaws.com"
            )
        }
        tried.append("web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN)")

        if value("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != nil || value("AWS_CONTAINER_CREDENTIALS_FULL_URI") != nil
        {
            return try await AWSCredentialSources.container(environment: environment)
        }
        tried.append("container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI)")

        if value("AWS_EC2_METADATA_DISABLED")?.lowercased() != "true" {
            let endpoint = value("AWS_EC2_METADATA_SERVICE_ENDPOINT") ?? "http://169.254.169.254"
            if let credentials = try await AWSCredentialSources.instanceMetadata(endpoint: endpoint) {
                return credentials
            }
            tried.append("EC2 instance metadata (\(endpoint))")
        }
        throw S3ClientError(
            .configuration,
            """
            no AWS credentials found; tried \(tried.joined(separator: ", ")); set AWS_ACCESS_KEY_ID and \
            AWS_SECRET_ACCESS_KEY or AWS_PROFILE
            """
        )
    }

    /// A profile named (`AWS_PROFILE`) but in neither file fails, saying so.
    private func checkProfileExists() throws {
        if let origin = files.profileOrigin, !files.profileExists {
            throw S3ClientError(
                .configuration,
                """
                the profile \"\(files.profile)\" (\(origin)) is in neither \(files.configPath) nor \
                \(files.credentialsPath); `aws configure list-profiles` lists those there are
                """
            )
        }
    }

    /// A profile that gets its credentials in a way pgclone does not (assuming a role from another
    /// profile, a credential process, IAM Identity Center) fails here, saying so, rather than
    /// falling through to the instance's credentials.
    private func checkProfileIsUsable(hasWebIdentity: Bool) throws {
        let unsupported: String? =
            if files.settings["credential_process"] != nil {
                "credential_process"
            } else if files.settings.keys.contains(where: { $0.hasPrefix("sso_") }) {
                "IAM Identity Center (sso_*)"
            } else if files.settings["role_arn"] != nil, !hasWebIdentity {
                "role_arn with \(files.settings["source_profile"] != nil ? "source_profile" : "credential_source")"
            } else {
                nil
            }
        if let unsupported {
            throw S3ClientError(
                .configuration,
                """
                the profile \"\(files.profile)\" gets its credentials by \(unsupported), which pgclone does not \
                read; give them to it in the environment: eval \"$(aws configure export-credentials --profile \
                \(files.profile) --format env)\"
                """
            )
        }
    }

    private func value(_ name: String) -> String? {
        environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }
}
