import Foundation

/// moto's S3 server of the test run (`PGCLONE_TEST_S3_ENDPOINT`), with its signature checks off, or
/// one started for a test. Buckets are made per test.
package struct S3TestServer: Sendable {
    package var endpoint: String
    package var accessKey = "test-key"
    package var secretKey = "test-secret"

    package static var shared: S3TestServer? {
        TestEnvironment.s3Endpoint.map { S3TestServer(endpoint: $0) }
    }

    package init(endpoint: String) {
        self.endpoint = endpoint
    }

    /// Variables that point pgclone at this server with these credentials.
    package func environment(location: String) -> [String: String?] {
        [
            "PGCLONE_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": accessKey, "AWS_SECRET_ACCESS_KEY": secretKey,
            "PGCLONE_STORAGE_LOCATION": location,
        ]
    }

    /// Runs a boto3 script with `s3` bound to a client of this server; returns its stdout.
    @discardableResult
    package func boto3(_ script: String) async throws -> String {
        let program = """
            import boto3, sys
            s3 = boto3.client("s3", endpoint_url="\(endpoint)", region_name="us-east-1",
                              aws_access_key_id="\(accessKey)", aws_secret_access_key="\(secretKey)")
            \(script)
            """
        let result = try await runCommand("python3", ["-c", program])
        guard result.exitCode == 0 else { throw TestSetupError("boto3 script failed: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A new empty bucket.
    package func makeBucket() async throws -> String {
        let name = "pgclone-\(UUID().uuidString.prefix(8).lowercased())"
        try await boto3("s3.create_bucket(Bucket=\"\(name)\")")
        return name
    }

    /// Keys in `bucket`.
    package func keys(_ bucket: String) async throws -> [String] {
        let output = try await boto3(
            """
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket="\(bucket)"):
                for item in page.get("Contents", []): print(item["Key"])
            """
        )
        return output.split(separator: "\n").map(String.init)
    }

    /// Whether `bucket` has a multipart upload in progress: one curl request, quick enough to poll.
    package func hasPendingUpload(_ bucket: String) async throws -> Bool {
        let result = try await runCommand(
            "curl",
            [
                "-sS", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "\(accessKey):\(secretKey)",
                "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "\(endpoint)/\(bucket)?uploads=",
            ]
        )
        return result.stdout.contains("<Upload>")
    }

    /// Keys of multipart uploads in progress in `bucket`.
    package func pendingUploads(_ bucket: String) async throws -> [String] {
        let output = try await boto3(
            "[print(u[\"Key\"]) for u in s3.list_multipart_uploads(Bucket=\"\(bucket)\").get(\"Uploads\", [])]"
        )
        return output.split(separator: "\n").map(String.init)
    }

    /// The object's ETag (multipart objects' end in `-N`, N parts).
    package func etag(_ bucket: String, _ key: String) async throws -> String {
        try await boto3("print(s3.head_object(Bucket=\"\(bucket)\", Key=\"\(key)\")[\"ETag\"])")
    }
}

extension S3TestServer {
    /// A moto server of its own that checks signatures: an IAM user with an access key for `s3:*`,
    /// made while moto still lets its first four requests through unauthenticated (PLATFORM.md §5).
    /// `stop` ends it.
    package static func startWithSignatureChecks() async throws -> (server: S3TestServer, stop: @Sendable () -> Void) {
        let port = try await runCommand(
            "python3",
            ["-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"]
        ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let started = try await runCommand(
            "bash",
            [
                "-c",
                """
                INITIAL_NO_AUTH_ACTION_COUNT=4 S3_UPLOAD_PART_MIN_SIZE=65536 nohup moto_server -H 127.0.0.1 -p \
                \(port) >/dev/null 2>&1 & echo $!
                """,
            ]
        )
        guard let pid = Int32(started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestSetupError("could not start moto_server: \(started)")
        }
        let stop: @Sendable () -> Void = { kill(pid, SIGTERM) }
        var server = S3TestServer(endpoint: "http://127.0.0.1:\(port)")
        do {
            for _ in 0..<100 {
                let probe = try await runCommand("curl", ["-fsS", "-o", "/dev/null", "\(server.endpoint)/moto-api/"])
                if probe.exitCode == 0 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let keys = try await server.boto3(
                """
                iam = boto3.client("iam", endpoint_url="\(server.endpoint)", region_name="us-east-1",
                                   aws_access_key_id="x", aws_secret_access_key="x")
                iam.create_user(UserName="pgclone")
                arn = iam.create_policy(PolicyName="s3-all", PolicyDocument='{"Version": "2012-10-17", "Statement": \
                [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}')["Policy"]["Arn"]
                iam.attach_user_policy(UserName="pgclone", PolicyArn=arn)
                key = iam.create_access_key(UserName="pgclone")["AccessKey"]
                print(key["AccessKeyId"], key["SecretAccessKey"])
                """
            ).split(separator: " ")
            server.accessKey = String(keys[0])
            server.secretKey = String(keys[1])
            return (server, stop)
        } catch {
            stop()
            throw error
        }
    }
}

extension S3TestServer {
    /// `Tests/Fixtures/faulty_s3_proxy.py` in front of this server, injecting `faults` (see the
    /// script); the returned server's endpoint is the proxy's. `log` gives what the proxy did.
    package func behindFaultyProxy(
        _ faults: [String]
    ) async throws -> (server: S3TestServer, log: @Sendable () -> String, stop: @Sendable () -> Void) {
        let script = FileManager.default.currentDirectoryPath + "/Tests/Fixtures/faulty_s3_proxy.py"
        let port = endpoint.split(separator: ":").last.map(String.init) ?? ""
        let directory = try TestEnvironment.makeTemporaryDirectory("pgclone-proxy")
        let log = directory + "/log"
        let started = try await runCommand(
            "bash",
            ["-c", "nohup python3 \"$0\" \"$@\" > \"\(log)\" 2>&1 & echo $!", script, port] + faults
        )
        guard let pid = Int32(started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestSetupError("could not start the proxy: \(started)")
        }
        let read: @Sendable () -> String = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        for _ in 0..<100 {
            if let line = read().split(separator: "\n").first, let proxyPort = Int(line) {
                var proxied = self
                proxied.endpoint = "http://127.0.0.1:\(proxyPort)"
                return (
                    proxied, read,
                    {
                        kill(pid, SIGTERM)
                        try? FileManager.default.removeItem(atPath: directory)
                    }
                )
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        kill(pid, SIGTERM)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        throw TestSetupError("the proxy did not start: \(read())")
    }
}
