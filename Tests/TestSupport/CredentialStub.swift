import Foundation

/// A stand-in for the AWS credential endpoints that only exist inside AWS: the container
/// credentials endpoint (ECS, EKS Pod Identity) and EC2's instance metadata service (IMDSv2). It
/// hands out `credentials` that expire two seconds later, so every use must fetch them again, and
/// counts the requests per path.
package struct CredentialStub: Sendable {
    package var url: String
    package var stop: @Sendable () -> Void

    package static let authorization = "Bearer stub-authorization"

    static let script = #"""
        import datetime, json, sys
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        access_key, secret_key = sys.argv[1], sys.argv[2]
        counts = {}
        def credentials():
            expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
            return json.dumps({"Code": "Success", "AccessKeyId": access_key, "SecretAccessKey": secret_key,
                               "Token": "stub-session-token", "Expiration": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")})
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args): pass
            def reply(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            def do_PUT(self):
                counts[self.path] = counts.get(self.path, 0) + 1
                if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    self.reply(200, "imds-token")
                else:
                    self.reply(400, "")
            def do_GET(self):
                counts[self.path] = counts.get(self.path, 0) + 1
                if self.path == "/counts":
                    self.reply(200, json.dumps(counts))
                elif self.path == "/container":
                    ok = self.headers.get("Authorization") == "Bearer stub-authorization"
                    self.reply(200 if ok else 401, credentials() if ok else "")
                elif self.path.startswith("/latest/meta-data/iam/security-credentials/"):
                    if self.headers.get("X-aws-ec2-metadata-token") != "imds-token":
                        self.reply(401, "")
                    elif self.path.endswith("/"):
                        self.reply(200, "pgclone-role")
                    else:
                        self.reply(200, credentials())
                else:
                    self.reply(404, "")
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """#

    /// Starts the stub; its port is read from its first line of output.
    package static func start(accessKey: String, secretKey: String) async throws -> CredentialStub {
        let directory = try TestEnvironment.makeTemporaryDirectory("pgclone-stub")
        let result = try await runCommand(
            "bash",
            [
                "-c", "nohup python3 -c \"$0\" \"$1\" \"$2\" > \"$3/port\" 2>&1 & echo $!", script, accessKey,
                secretKey, directory,
            ]
        )
        guard let pid = Int32(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestSetupError("could not start the credential stub: \(result)")
        }
        for _ in 0..<100 {
            if let text = try? String(contentsOfFile: directory + "/port", encoding: .utf8),
                let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                return CredentialStub(
                    url: "http://127.0.0.1:\(port)",
                    stop: {
                        kill(pid, SIGTERM)
                        try? FileManager.default.removeItem(atPath: directory)
                    }
                )
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        kill(pid, SIGTERM)
        try? FileManager.default.removeItem(atPath: directory)
        throw TestSetupError("the credential stub did not start")
    }

    /// Requests served, by path.
    package func counts() async throws -> [String: Int] {
        let result = try await runCommand("curl", ["-fsS", url + "/counts"])
        return (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Int]) ?? [:]
    }
}
