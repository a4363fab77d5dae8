import Foundation
import NIOCore
import PGCloneStreams

/// The credential sources that are services: STS for web identity, the container endpoint, and
/// EC2 instance metadata. Each returns temporary credentials with their expiry.
enum AWSCredentialSources {
    // MARK: Web identity

    /// STS AssumeRoleWithWebIdentity with the token in `tokenFile` (read again on every refresh, as
    /// Kubernetes rotates it). The request needs no signature.
    static func webIdentity(
        tokenFile: String,
        roleARN: String,
        sessionName: String,
        endpoint: String
    ) async throws -> AWSCredentials {
        let source = "web identity (\(roleARN))"
        guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8).trimmingWhitespace(),
            !token.isEmpty
        else {
            throw S3ClientError(.configuration, "cannot read the web identity token file \(tokenFile)")
        }
        var request = HTTPRequest(method: "POST", url: trimmed(endpoint) + "/")
        request.headers = ["Content-Type: application/x-www-form-urlencoded", "Accept: application/xml"]
        request.body = ByteBuffer(
            string: S3Encoding.query([
                ("Action", "AssumeRoleWithWebIdentity"), ("RoleArn", roleARN), ("RoleSessionName", sessionName),
                ("Version", "2011-06-15"), ("WebIdentityToken", token),
            ])
        )
        let response = try await fetch(request, what: "STS AssumeRoleWithWebIdentity for \(source)")
        let document = S3XMLElement.parse(Array(response.body.readableBytesView))
        guard response.status == 200,
            let credentials = document?.first("AssumeRoleWithWebIdentityResult", "Credentials"),
            let key = credentials.first("AccessKeyId")?.text, let secret = credentials.first("SecretAccessKey")?.text
        else {
            let error = document?.first("Error") ?? document
            let detail = [error?.first("Code")?.text, error?.first("Message")?.text].compactMap { $0 }.joined(
                separator: ": "
            )
            throw S3ClientError(
                .unavailable,
                """
                STS AssumeRoleWithWebIdentity for \(source) failed with HTTP \
                \(response.status)\(detail.isEmpty ? "" : " (\(detail))")
                """
            )
        }
        return AWSCredentials(
            accessKeyID: key,
            secretAccessKey: secret,
            sessionToken: credentials.first("SessionToken")?.text,
            expiration: credentials.first("Expiration").flatMap { parseDate($0.text) },
            source: source
        )
    }

    // MARK: Container endpoint

    /// ECS task roles (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`) and EKS Pod Identity
    /// (`AWS_CONTAINER_CREDENTIALS_FULL_URI` with `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`).
    static func container(environment: [String: String]) async throws -> AWSCredentials {
        let url: String
        if let relative = environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"], !relative.isEmpty {
            url = "http://169.254.170.2" + relative
        } else {
            url = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"] ?? ""
            guard isAllowedContainerURL(url) else {
                throw S3ClientError(
                    .configuration,
                    """
                    AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback or the ECS/EKS \
                    link-local address (it is \(url))
                    """
                )
            }
        }
        let source = "container endpoint (\(url))"
        var request = HTTPRequest(method: "GET", url: url)
        request.timeouts = .init(connect: 2, stall: 5)
        if let file = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"], !file.isEmpty {
            guard let token = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw S3ClientError(.configuration, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \(file)")
            }
            request.headers.append("Authorization: \(token.trimmingWhitespace())")
        } else if let token = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"], !token.isEmpty {
            request.headers.append("Authorization: \(token)")
        }
        let response = try await fetch(request, what: source)
        guard response.status == 200 else {
            throw S3ClientError(.unavailable, "the \(source) answered HTTP \(response.status)")
        }
        return try decodeJSONCredentials(response.body, source: source)
    }

    static func isAllowedContainerURL(_ url: String) -> Bool {
        if url.hasPrefix("https://") { return true }
        guard url.hasPrefix("http://") else { return false }
        let authority = url.dropFirst("http://".count).prefix { $0 != "/" }
        let host =
            authority.hasPrefix("[")
            ? String(authority.dropFirst().prefix { $0 != "]" }) : String(authority.prefix { $0 != ":" })
        return host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "169.254.170.2"
            || host == "169.254.170.23" || host == "fd00:ec2::23"
    }

    // MARK: EC2 instance metadata

    /// IMDSv2: a session token, then the instance role's credentials. `nil` when there is no
    /// metadata service (not on EC2) or no role.
    static func instanceMetadata(endpoint: String) async throws -> AWSCredentials? {
        let base = trimmed(endpoint)
        var tokenRequest = HTTPRequest(method: "PUT", url: base + "/latest/api/token")
        tokenRequest.headers = ["X-aws-ec2-metadata-token-ttl-seconds: 21600"]
        tokenRequest.timeouts = .init(connect: 1, stall: 2)
        guard let tokenResponse = try? await HTTPTransfer.perform(tokenRequest), tokenResponse.status == 200 else {
            return nil
        }
        let token = String(buffer: tokenResponse.body).trimmingWhitespace()
        var roleRequest = HTTPRequest(method: "GET", url: base + "/latest/meta-data/iam/security-credentials/")
        roleRequest.headers = ["X-aws-ec2-metadata-token: \(token)"]
        roleRequest.timeouts = tokenRequest.timeouts
        let roleResponse = try await fetch(roleRequest, what: "EC2 instance metadata")
        guard roleResponse.status == 200,
            let role = String(buffer: roleResponse.body).split(whereSeparator: \.isNewline).first.map(String.init)
        else { return nil }
        var credentialsRequest = HTTPRequest(
            method: "GET",
            url: base + "/latest/meta-data/iam/security-credentials/" + role
        )
        credentialsRequest.headers = roleRequest.headers
        credentialsRequest.timeouts = tokenRequest.timeouts
        let source = "EC2 instance metadata (role \(role))"
        let response = try await fetch(credentialsRequest, what: source)
        guard response.status == 200 else {
            throw S3ClientError(.unavailable, "the \(source) answered HTTP \(response.status)")
        }
        return try decodeJSONCredentials(response.body, source: source)
    }

    // MARK: Helpers

    private struct JSONCredentials: Decodable {
        var AccessKeyId: String
        var SecretAccessKey: String
        var Token: String?
        var Expiration: String?
    }

    private static func decodeJSONCredentials(_ body: ByteBuffer, source: String) throws -> AWSCredentials {
        guard let decoded = try? JSONDecoder().decode(JSONCredentials.self, from: Data(body.readableBytesView)) else {
            throw S3ClientError(.unavailable, "the \(source) returned no credentials")
        }
        return AWSCredentials(
            accessKeyID: decoded.AccessKeyId,
            secretAccessKey: decoded.SecretAccessKey,
            sessionToken: decoded.Token,
            expiration: decoded.Expiration.flatMap(parseDate),
            source: source
        )
    }

    private static func fetch(_ request: HTTPRequest, what: String) async throws -> HTTPResponse {
        do {
            return try await HTTPTransfer.perform(request)
        } catch let error as PartialTransfer {
            throw S3ClientError(.unavailable, "cannot reach the \(what): \(error)", cause: error.cause)
        }
    }

    static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    private static func trimmed(_ url: String) -> String {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }
}
