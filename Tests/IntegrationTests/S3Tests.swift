import Foundation
import PGCloneActors
import PGCloneTestSupport
import Synchronization
import Testing

/// dump, ls and restore through S3: moto's server over HTTP, the real pg_dump and pg_restore.
@Suite(.enabled(if: TestEnvironment.hasPostgresAndS3, "run with scripts/test.sh (needs PostgreSQL and moto)"))
struct S3Tests {
    let s3 = S3TestServer.shared!

    private func database(_ server: PostgresServer, _ prefix: String, rows: Int) async throws -> String {
        let name = TestEnvironment.uniqueName(prefix)
        try await server.createDatabase(name)
        try await server.psql(
            """
            CREATE TABLE t AS SELECT i, md5(i::text) || md5((i * 7)::text) AS h FROM generate_series(1, \(rows)) AS i;
            ALTER DATABASE \(quoteIdentifier(name)) SET search_path = public, pg_catalog;
            """,
            database: name
        )
        return name
    }

    @Test func roundTripInSeveralPartsEachWay() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = try await database(server, "s3_src", rows: 60_000)
        let target = TestEnvironment.uniqueName("s3_dst")
        let bucket = try await s3.makeBucket()
        var environment = s3.environment(location: "s3://\(bucket)/backups/nightly")
        environment["PGCLONE_S3_PART_SIZE"] = "256KiB"

        let dumped = try await pgclone.run(["dump", "--database", server.url(source)], environment: environment)
        #expect(dumped.exitCode == 0, "\(dumped)")
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await s3.keys(bucket) == ["backups/nightly/\(key)"])
        let etag = try await s3.etag(bucket, "backups/nightly/\(key)")
        let parts = Int(etag.split(separator: "-").last?.filter(\.isNumber) ?? "") ?? 0
        #expect(parts >= 4, "ETag \(etag)")

        let listed = try await pgclone.run(["ls"], environment: environment)
        #expect(listed.stdout == key + "\n", "\(listed)")
        let restored = try await pgclone.run(
            ["restore", source, "--database", server.url(target)],
            environment: environment
        )
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(restored.stdout == key + "\n")
        #expect(try await server.tableFingerprints(target) == server.tableFingerprints(source))
        #expect(try await server.psql("SHOW search_path", database: target) == "public, pg_catalog")
        #expect(try await s3.pendingUploads(bucket).isEmpty)
    }

    @Test func moreThan1000KeysListCompletelyAndTheNewestIsRestored() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = try await database(server, "s3_many", rows: 100)
        let target = TestEnvironment.uniqueName("s3_many_dst")
        let bucket = try await s3.makeBucket()
        // 1,100 older dumps (and a foreign object) under the prefix, then a real, newest one.
        // Each begins with pgclone's metadata frame: the key (with "_") cannot say whose they are.
        try await s3.boto3(
            """
            import json, struct
            meta = json.dumps({"format": "pgclone", "formatVersion": 1, "pgcloneVersion": "old", "serverVersion": "15",
                               "database": "\(source)", "createdAt": "x", "settings": []}).encode()
            old = struct.pack("<II", 0x184D2A50, len(meta)) + meta
            for i in range(1100):
                s3.put_object(Bucket="\(bucket)", Key="p/\(source)/20200101T000000.%06dZ.default.dump" % i, Body=old)
            s3.put_object(Bucket="\(bucket)", Key="p/\(source)/notes.txt", Body=b"not a dump")
            """
        )
        let environment = s3.environment(location: "s3://\(bucket)/p")
        let key = try await pgclone.run(["dump", "--database", server.url(source)], environment: environment)
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let listed = try await pgclone.run(["ls", source], environment: environment)
        let keys = listed.stdout.split(separator: "\n").map(String.init)
        #expect(keys.count == 1101, "\(listed.stderr)")
        #expect(keys.first == key)
        #expect(keys.last == "\(source)/20200101T000000.000000Z.default.dump")

        let restored = try await pgclone.run(
            ["restore", source, "--database", server.url(target)],
            environment: environment
        )
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(restored.stdout == key + "\n")
        #expect(try await server.psql("SELECT count(*) FROM t", database: target) == "100")
    }

    @Test func credentialsComeFromAProfileFile() async throws {
        let pgclone = try PGCloneHarness()
        let bucket = try await s3.makeBucket()
        let credentials = pgclone.directory + "/credentials"
        let config = pgclone.directory + "/config"
        try """
        [default]\naws_access_key_id = wrong\n\n[ci]\naws_access_key_id = \(s3.accessKey)\naws_secret_access_key \
        = \(s3.secretKey)\n
        """
        .write(toFile: credentials, atomically: true, encoding: .utf8)
        try "[profile ci]\nregion = eu-west-1\n".write(toFile: config, atomically: true, encoding: .utf8)
        try await s3.boto3(
            "s3.put_object(Bucket=\"\(bucket)\", Key=\"db/20240101T000000.000000Z.default.dump\", Body=b\"x\")"
        )
        let listed = try await pgclone.run(
            ["ls"],
            environment: [
                "PGCLONE_S3_ENDPOINT_URL": s3.endpoint, "PGCLONE_STORAGE_LOCATION": "s3://\(bucket)",
                "AWS_SHARED_CREDENTIALS_FILE": credentials, "AWS_CONFIG_FILE": config, "AWS_PROFILE": "ci",
            ]
        )
        #expect(listed.exitCode == 0, "\(listed)")
        #expect(listed.stdout == "db/20240101T000000.000000Z.default.dump\n")

        let missing = try await pgclone.run(
            ["ls"],
            environment: ["PGCLONE_S3_ENDPOINT_URL": s3.endpoint, "PGCLONE_STORAGE_LOCATION": "s3://\(bucket)"]
        )
        #expect(missing.exitCode == 2, "\(missing)")
        #expect(
            missing.errorLines == [
                """
                pgclone: error: no AWS credentials found; tried environment (AWS_ACCESS_KEY_ID), profile \
                \"default\" (/nonexistent/credentials, /nonexistent/config), web identity \
                (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN), container endpoint \
                (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI), EC2 instance metadata \
                (http://127.0.0.1:9); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE
                """
            ]
        )

        // A profile that is not there, and one that gets its credentials in a way pgclone does not
        // read: each said, not passed over for the instance's credentials.
        try """
        [profile ci]\nregion = eu-west-1\n[profile assumed]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = ci\n
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let files = ["AWS_SHARED_CREDENTIALS_FILE": credentials, "AWS_CONFIG_FILE": config]
        for (profile, line) in [
            (
                "nosuch",
                """
                pgclone: error: the profile \"nosuch\" (AWS_PROFILE) is in neither \(config) nor \(credentials); \
                `aws configure list-profiles` lists those there are
                """
            ),
            (
                "assumed",
                """
                pgclone: error: the profile \"assumed\" gets its credentials by role_arn with source_profile, which \
                pgclone does not read; give them to it in the environment: eval \"$(aws configure \
                export-credentials --profile assumed --format env)\"
                """
            ),
        ] {
            let refused = try await pgclone.run(
                ["ls"],
                environment: [
                    "PGCLONE_S3_ENDPOINT_URL": s3.endpoint, "PGCLONE_STORAGE_LOCATION": "s3://\(bucket)",
                    "AWS_PROFILE": profile,
                ].merging(files) { $1 }
            )
            #expect(refused.exitCode == 2, "\(refused)")
            #expect(refused.errorLines == [line], "\(refused)")
        }
        // A profile named but not there is an error even beside keys in the environment, as for
        // the AWS CLI: what it was meant to give (an endpoint, a region) would be missed.
        let besideKeys = try await pgclone.run(
            ["ls"],
            environment: s3.environment(location: "s3://\(bucket)").merging(files) { $1 }.merging([
                "AWS_PROFILE": "nosuch"
            ]) { $1 }
        )
        #expect(besideKeys.exitCode == 2, "\(besideKeys)")
        #expect(
            besideKeys.errorLines.first?.hasPrefix("pgclone: error: the profile \"nosuch\"") == true,
            "\(besideKeys)"
        )
    }

    @Test func sigtermDuringAnUploadLeavesNoObjectAndNoPendingUpload() async throws {
        let pgclone = try PGCloneHarness()
        let source = try await database(pgclone.server, "s3_sig", rows: 400_000)
        let bucket = try await s3.makeBucket()
        // An UploadPart the proxy holds: the upload is in flight, for certain, when SIGTERM comes.
        let released = pgclone.directory + "/released"
        let (proxied, log, stop) = try await s3.behindFaultyProxy(["PUT:hold:\(released)"])
        defer {
            FileManager.default.createFile(atPath: released, contents: nil)
            stop()
        }
        var environment = s3.environment(location: "s3://\(bucket)")
        environment["PGCLONE_S3_ENDPOINT_URL"] = proxied.endpoint
        environment["PGCLONE_S3_PART_SIZE"] = "256KiB"
        environment["PGCLONE_S3_PARTS_IN_FLIGHT"] = "1"
        let dumping = Task {
            try await pgclone.run(["dump", "--database", pgclone.server.url(source)], environment: environment)
        }
        let finished = StopFlag()
        Task {
            _ = await dumping.result
            finished.set()
        }
        while !log().contains("fault PUT:hold") && !finished.isSet {
            try await Task.sleep(for: .milliseconds(20))
        }
        let signalled = pgclone.signal(SIGTERM)
        let result = try await dumping.value
        #expect(!signalled.isEmpty, "the upload finished before it could be interrupted")
        #expect(result.exitCode == 128 + SIGTERM, "\(result)")
        #expect(try await s3.keys(bucket).isEmpty)
        #expect(try await s3.pendingUploads(bucket).isEmpty)
    }

    /// An endpoint that accepts connections and never answers: SIGTERM ends the dump within
    /// seconds (the request that publishes it, and the check after it, each get a few seconds and
    /// no retry), not after minutes of stall timeouts and retries, which a container's grace
    /// period before SIGKILL would not wait for.
    @Test func sigtermWithAnEndpointThatNeverAnswersEndsInSeconds() async throws {
        let pgclone = try PGCloneHarness()
        let source = try await database(pgclone.server, "s3_hung", rows: 100)
        // Listening, never accepting: the kernel completes the connections, and nobody answers.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(listener, address, length) == 0 && listen(listener, 64) == 0
                    && getsockname(listener, address, &length) == 0
            }
        }
        try #require(bound)
        // Connections are taken (to know the PutObject's has come) and never answered.
        let accepted = Mutex<[Int32]>([])
        DispatchQueue.global().async {
            while case let connection = accept(listener, nil, nil), connection >= 0 {
                accepted.withLock { $0.append(connection) }
            }
        }
        defer { for connection in accepted.withLock({ $0 }) { close(connection) } }
        var environment = s3.environment(location: "s3://hung-bucket/x")
        environment["PGCLONE_S3_ENDPOINT_URL"] = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
        let dumping = Task {
            try await pgclone.run(["dump", "--database", pgclone.server.url(source)], environment: environment)
        }
        // A small dump's one request: its PutObject.
        try await waitUntil("the PutObject's connection") { !accepted.withLock { $0.isEmpty } }
        #expect(!pgclone.signal(SIGTERM).isEmpty)
        let signalled = ContinuousClock.now
        let ended = StopFlag()
        Task {
            try await Task.sleep(for: .seconds(90))
            if !ended.isSet { pgclone.signal(SIGKILL) }
        }
        let result = try await dumping.value
        ended.set()
        #expect(ContinuousClock.now - signalled < .seconds(45), "SIGTERM took minutes: \(result)")
        #expect(result.exitCode == 128 + SIGTERM, "\(result)")
        #expect(result.errorLines == ["pgclone: error: interrupted"], "\(result)")
        #expect(result.stderr.contains("could not check whether S3 made"), "\(result)")
        #expect(!result.stderr.contains("retrying"), "\(result)")
    }

    /// The PutObject of a small dump that S3 makes only after the interrupt's grace has cut it
    /// short: the check after it finds nothing, and pgclone says the dump may still appear
    /// (whole), rather than nothing; it does.
    @Test func aPutObjectCutShortByTheInterruptIsSaidToMayStillAppear() async throws {
        let pgclone = try PGCloneHarness()
        let source = try await database(pgclone.server, "s3_late", rows: 100)
        let bucket = try await s3.makeBucket()
        // Passed on 20 s after it came whole: the SIGTERM that follows it (late by seconds when
        // the other tests load the machine: 8 s was once not enough) cuts it short after 5 s.
        let (proxied, log, stop) = try await s3.behindFaultyProxy(["PUTOBJECT:delay:20"])
        defer { stop() }
        var environment = s3.environment(location: "s3://\(bucket)")
        environment["PGCLONE_S3_ENDPOINT_URL"] = proxied.endpoint
        let dumping = Task {
            try await pgclone.run(["dump", "--database", pgclone.server.url(source)], environment: environment)
        }
        // Once the proxy has it whole: S3 makes it, whatever happens to pgclone.
        try await waitUntil("the PutObject at the proxy") { log().contains("received PutObject") }
        #expect(!pgclone.signal(SIGTERM).isEmpty)
        let result = try await dumping.value
        #expect(result.exitCode == 128 + SIGTERM, "\(result)")
        #expect(
            result.stderr.contains("the interrupt cut short the request that makes")
                && result.stderr.contains(
                    "unanswered: S3 may still make it, holding the whole dump, and `pgclone ls` lists it if it does"
                ),
            "\(result)"
        )
        // S3 makes it after all.
        try await waitUntil("the PutObject passed on") { log().contains("forwarded PutObject: ") }
        #expect(log().contains("forwarded PutObject: HTTP/1.1 200"), "\(log())")
        let key = try #require(try await s3.keys(bucket).first, "\(log())")
        let verified = try await pgclone.run(["verify", key], environment: s3.environment(location: "s3://\(bucket)"))
        #expect(verified.exitCode == 0, "\(verified)")
    }

    /// A CreateMultipartUpload whose answer the interrupt's grace does not wait for: S3 made the
    /// upload, and pgclone, which cannot abort what it has no ID of, says so.
    @Test func aCreateMultipartUploadCutShortByTheInterruptIsSaidSo() async throws {
        let pgclone = try PGCloneHarness()
        let source = try await database(pgclone.server, "s3_create", rows: 20000)
        let bucket = try await s3.makeBucket()
        let (proxied, log, stop) = try await s3.behindFaultyProxy(["CREATE:hold:20"])
        defer { stop() }
        var environment = s3.environment(location: "s3://\(bucket)")
        environment["PGCLONE_S3_ENDPOINT_URL"] = proxied.endpoint
        environment["PGCLONE_S3_PART_SIZE"] = "64KiB"
        let dumping = Task {
            try await pgclone.run(["dump", "--database", pgclone.server.url(source)], environment: environment)
        }
        try await waitUntil("the CreateMultipartUpload at the proxy") { log().contains("fault CREATE") }
        #expect(!pgclone.signal(SIGTERM).isEmpty)
        let result = try await dumping.value
        #expect(result.exitCode == 128 + SIGTERM, "\(result)")
        #expect(
            result.stderr.contains(
                "the interrupt cut short the creation of the multipart upload of "
            ) && result.stderr.contains("unanswered: if S3 made it, it holds no part and a lifecycle rule"),
            "\(result)"
        )
        #expect(try await s3.pendingUploads(bucket).count == 1, "\(log())")
        #expect(try await s3.keys(bucket).isEmpty)
    }

    @Test func aMissingBucketIsOneClearLine() async throws {
        let pgclone = try PGCloneHarness.offline()
        let result = try await pgclone.run(["ls"], environment: s3.environment(location: "s3://no-such-bucket-here/x"))
        #expect(result.exitCode == 1)
        #expect(
            result.errorLines == [
                "pgclone: error: the bucket no-such-bucket-here does not exist (s3://no-such-bucket-here/x/)"
            ]
        )
    }

    /// A certificate that does not verify never will: one line, no retries, the fix named.
    @Test func aCertificateThatDoesNotVerifyIsOneLineWithoutRetries() async throws {
        let pgclone = try PGCloneHarness.offline()
        let directory = try pgclone.makeDirectory("tls")
        let made = try await runCommand(
            "openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem",
            ]
        )
        try #require(made.exitCode == 0, "\(made)")
        let port = try await freePort()
        let server = try await BackgroundProcess.start(
            "python3",
            [
                "-c",
                """
                import http.server, ssl, sys
                httpd = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.BaseHTTPRequestHandler)
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(sys.argv[2] + "/cert.pem", sys.argv[2] + "/key.pem")
                httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
                httpd.serve_forever()
                """,
                "\(port)", directory,
            ]
        )
        defer { server.stop() }
        try await Task.sleep(for: .seconds(1))
        var environment = s3.environment(location: "s3://tls-bucket/x")
        environment["PGCLONE_S3_ENDPOINT_URL"] = "https://127.0.0.1:\(port)"
        let result = try await pgclone.run(["ls"], environment: environment)
        #expect(result.exitCode == 1, "\(result)")
        #expect(result.errorLines.count == 1, "\(result)")
        #expect(
            result.errorLines.first?.hasPrefix("pgclone: error: TLS refused the S3 endpoint for s3://tls-bucket/x/: ")
                == true,
            "\(result)"
        )
        #expect(
            result.errorLines.first?.hasSuffix(
                "; if it uses a private CA, set AWS_CA_BUNDLE to that CA's certificate file"
            ) == true,
            "\(result)"
        )
        #expect(!result.stderr.contains("retrying"), "\(result)")
    }
}

/// Signatures really checked: moto in its signature-enforcing mode.
@Suite(.enabled(if: TestEnvironment.hasPostgresAndS3, "run with scripts/test.sh (needs PostgreSQL and moto)"))
struct S3SignatureTests {
    @Test func aSignedRoundTripWorksAndAWrongSecretIsRefused() async throws {
        let (s3, stop) = try await S3TestServer.startWithSignatureChecks()
        defer { stop() }
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("sig_src")
        let target = TestEnvironment.uniqueName("sig_dst")
        try await server.createDatabase(source)
        try await server.psql(
            "CREATE TABLE t AS SELECT i, md5(i::text) AS h FROM generate_series(1, 40000) AS i",
            database: source
        )
        let bucket = try await s3.makeBucket()
        // No prefix: moto's validator mishandles percent-encoded query values (PLATFORM.md §5), and
        // a prefix's "/" must be encoded for real S3.
        var environment = s3.environment(location: "s3://\(bucket)")
        environment["PGCLONE_S3_PART_SIZE"] = "128KiB"

        let dumped = try await pgclone.run(["dump", "--database", server.url(source)], environment: environment)
        #expect(dumped.exitCode == 0, "\(dumped)")
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await pgclone.run(["ls"], environment: environment).stdout == key + "\n")
        let restored = try await pgclone.run(
            ["restore", key, "--database", server.url(target)],
            environment: environment
        )
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await server.tableFingerprints(target) == server.tableFingerprints(source))

        environment["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        let refused = try await pgclone.run(["ls"], environment: environment)
        #expect(refused.exitCode == 1)
        #expect(refused.errorLines.count == 1, "\(refused)")
        #expect(
            refused.errorLines.first?.hasPrefix(
                """
                pgclone: error: S3 rejected the credentials from environment for s3://\(bucket)/: S3 \
                ListObjectsV2 failed with HTTP 403 (SignatureDoesNotMatch
                """
            ) == true,
            "\(refused)"
        )
        #expect(!refused.stderr.contains("not-the-secret"))

        // A dump says it once, and leaves nothing.
        let dump = try await pgclone.run(["dump", "--database", server.url(source)], environment: environment)
        #expect(dump.exitCode == 1, "\(dump)")
        #expect(dump.errorLines.count == 1, "\(dump)")
        #expect(dump.stderrLines.filter { $0.contains("SignatureDoesNotMatch") }.count == 1, "\(dump)")
        #expect(dump.errorLines.first?.contains("S3 rejected the credentials from environment") == true, "\(dump)")
        #expect(!dump.stderr.contains("not-the-secret"))
        environment["AWS_SECRET_ACCESS_KEY"] = s3.secretKey
        #expect(try await pgclone.run(["ls"], environment: environment).stdout == key + "\n")
    }
}

/// Each credential source resolves, and temporary credentials are fetched again when they expire.
@Suite(.enabled(if: TestEnvironment.hasPostgresAndS3, "run with scripts/test.sh (needs PostgreSQL and moto)"))
struct S3CredentialSourceTests {
    let s3 = S3TestServer.shared!

    private func source(_ lines: [String]) -> String? {
        lines.first { $0.hasPrefix("pgclone: debug: using AWS credentials from ") }
            .map { String($0.dropFirst("pgclone: debug: using AWS credentials from ".count)) }
    }

    @Test func webIdentityThroughSTS() async throws {
        let pgclone = try PGCloneHarness.offline()
        let bucket = try await s3.makeBucket()
        let tokenFile = pgclone.directory + "/token"
        try "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let result = try await pgclone.run(
            ["ls", "--log-level", "debug"],
            environment: [
                "PGCLONE_S3_ENDPOINT_URL": s3.endpoint, "PGCLONE_STORAGE_LOCATION": "s3://\(bucket)",
                "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/pgclone",
                "AWS_ENDPOINT_URL_STS": s3.endpoint,
            ]
        )
        #expect(result.exitCode == 0, "\(result)")
        #expect(
            source(result.stderrLines)?.hasPrefix("web identity (arn:aws:iam::123456789012:role/pgclone)") == true,
            "\(result)"
        )
    }

    @Test func containerEndpointAndRefreshBeforeExpiry() async throws {
        let stub = try await CredentialStub.start(accessKey: s3.accessKey, secretKey: s3.secretKey)
        defer { stub.stop() }
        let pgclone = try PGCloneHarness()
        let database = TestEnvironment.uniqueName("cred_src")
        try await pgclone.server.createDatabase(database)
        try await pgclone.server.psql(
            "CREATE TABLE t AS SELECT i, md5(i::text) AS h FROM generate_series(1, 30000) AS i",
            database: database
        )
        let bucket = try await s3.makeBucket()
        let tokenFile = pgclone.directory + "/authorization"
        try CredentialStub.authorization.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let result = try await pgclone.run(
            ["dump", "--database", pgclone.server.url(database), "--log-level", "debug"],
            environment: [
                "PGCLONE_S3_ENDPOINT_URL": s3.endpoint, "PGCLONE_STORAGE_LOCATION": "s3://\(bucket)",
                "PGCLONE_S3_PART_SIZE": "64KiB", "AWS_CONTAINER_CREDENTIALS_FULL_URI": stub.url + "/container",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile,
            ]
        )
        #expect(result.exitCode == 0, "\(result)")
        #expect(
            source(result.stderrLines)?.hasPrefix("container endpoint (\(stub.url)/container)") == true,
            "\(result)"
        )
        // They expire within the refresh margin: each request of the upload fetched them again.
        #expect((try await stub.counts()["/container"] ?? 0) >= 3)
        #expect(try await s3.keys(bucket).count == 1)
    }

    @Test func instanceMetadataV2() async throws {
        let stub = try await CredentialStub.start(accessKey: s3.accessKey, secretKey: s3.secretKey)
        defer { stub.stop() }
        let pgclone = try PGCloneHarness.offline()
        let bucket = try await s3.makeBucket()
        let result = try await pgclone.run(
            ["ls", "--log-level", "debug"],
            environment: [
                "PGCLONE_S3_ENDPOINT_URL": s3.endpoint, "PGCLONE_STORAGE_LOCATION": "s3://\(bucket)",
                "AWS_EC2_METADATA_SERVICE_ENDPOINT": stub.url,
            ]
        )
        #expect(result.exitCode == 0, "\(result)")
        #expect(source(result.stderrLines)?.hasPrefix("EC2 instance metadata (role pgclone-role)") == true, "\(result)")
        #expect(try await stub.counts()["/latest/api/token"] == 1)
    }
}

/// Transfers survive throttling, server errors, resets in the middle of a body and stalls.
@Suite(.enabled(if: TestEnvironment.hasPostgresAndS3, "run with scripts/test.sh (needs PostgreSQL and moto)"))
struct S3FaultTests {
    let s3 = S3TestServer.shared!

    @Test func dumpAndRestoreCompleteThroughFaults() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("fault_src")
        let target = TestEnvironment.uniqueName("fault_dst")
        try await server.createDatabase(source)
        try await server.psql(
            "CREATE TABLE t AS SELECT i, md5(i::text) || md5((i * 3)::text) AS h FROM generate_series(1, 80000) AS i",
            database: source
        )
        let bucket = try await s3.makeBucket()
        let (proxied, log, stop) = try await s3.behindFaultyProxy([
            "PUT:status:500", "PUT:status:503",
            "GET:status:500", "GET:status:503", "GET:reset:100000", "GET:stall:70000:20",
        ])
        defer { stop() }
        var environment = proxied.environment(location: "s3://\(bucket)/faults")
        environment["PGCLONE_S3_PART_SIZE"] = "512KiB"
        environment["PGCLONE_S3_STALL_TIMEOUT"] = "2"

        let dumped = try await pgclone.run(["dump", "--database", server.url(source)], environment: environment)
        #expect(dumped.exitCode == 0, "\(dumped)")
        #expect(
            dumped.stderrLines.filter { $0.contains("S3 UploadPart") && $0.contains("retrying") }.count == 2,
            "\(dumped)"
        )
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let restored = try await pgclone.run(
            ["restore", key, "--database", server.url(target)],
            environment: environment
        )
        #expect(restored.exitCode == 0, "\(restored)")
        let retries = restored.stderrLines.filter { $0.contains("S3 GetObject part") && $0.contains("retrying") }
        #expect(retries.count == 4, "\(restored)")
        #expect(retries.contains { $0.contains("throttled") })
        #expect(retries.contains { $0.contains("server error") })
        #expect(retries.contains { $0.contains("transfer interrupted") })
        #expect(log().split(separator: "\n").filter { $0.hasPrefix("fault ") }.count == 6, "\(log())")
        #expect(try await server.tableFingerprints(target) == server.tableFingerprints(source))
    }
}

extension S3FaultTests {
    /// A prune that fails part-way (S3 refuses the second DeleteObject) says, with `--json`, what
    /// it had deleted and what it kept: a script must not take a failed prune for one that
    /// deleted nothing.
    @Test func aPruneThatFailsPartWaySaysWhatItDeleted() async throws {
        let pgclone = try PGCloneHarness()
        let dumped = try await pgclone.dumpToNewBucket(s3, prefix: "prune_fail", rows: 100)
        var keys = [dumped.key]
        for _ in 0..<2 {
            let again = try await pgclone.run(
                ["dump", "--database", pgclone.server.url(dumped.source)],
                environment: dumped.environment
            )
            keys.append(again.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let (proxied, log, stop) = try await s3.behindFaultyProxy(["DELETE:pass", "DELETE:status:403"])
        defer { stop() }
        let environment = proxied.environment(location: "s3://\(dumped.bucket)")
        let pruned = try await pgclone.run(
            ["prune", dumped.source, "--keep-last", "0", "--confirm", "--json"],
            environment: environment
        )
        #expect(pruned.exitCode != 0, "\(pruned)")
        #expect(pruned.stderrLines.last?.contains("AccessDenied") == true, "\(pruned)")
        let document = try #require(
            try JSONSerialization.jsonObject(with: Data(pruned.stdout.utf8)) as? [String: Any],
            "\(pruned)"
        )
        let error = try #require(document["error"] as? [String: Any], "\(pruned)")
        #expect(error["exit_code"] as? Int == Int(pruned.exitCode))
        let result = try #require(document["result"] as? [String: Any], "\(pruned)")
        let deleted = try #require(result["deleted"] as? [String])
        let kept = try #require(result["kept"] as? [String])
        #expect(deleted.count == 1, "\(pruned)")
        #expect(Set(deleted + kept) == Set(keys), "\(pruned)")
        #expect(result["dry_run"] as? Bool == false)
        let listed = try await pgclone.run(["ls", dumped.source], environment: environment)
        #expect(Set(listed.stdout.split(separator: "\n").map(String.init)) == Set(kept), "\(listed)")
        #expect(log().contains("fault DELETE:status:403"), "\(log())")
    }

    @Test func anObjectReplacedDuringTheRestoreFailsClearly() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let dumped = try await pgclone.dumpToNewBucket(s3, prefix: "etag_src")
        let (bucket, key) = (dumped.bucket, dumped.key)
        let target = TestEnvironment.uniqueName("etag_dst")

        // The first part's response stops after 10,000 bytes and is held until the object has been
        // replaced; then its connection is reset, and the resumed GET no longer matches the ETag
        // the restore started with. No timing is involved: moto can be slow under the full suite.
        let released = try pgclone.makeDirectory("hold") + "/released"
        let (proxied, log, stop) = try await s3.behindFaultyProxy(["GET:hold:10000:\(released)"])
        defer { stop() }
        var proxiedEnvironment = proxied.environment(location: "s3://\(bucket)")
        proxiedEnvironment["PGCLONE_S3_PART_SIZE"] = "256KiB"
        proxiedEnvironment["PGCLONE_S3_PARTS_IN_FLIGHT"] = "1"
        proxiedEnvironment["PGCLONE_S3_STALL_TIMEOUT"] = "600"
        async let restoring = pgclone.run(
            ["restore", key, "--database", server.url(target)],
            environment: proxiedEnvironment
        )
        for _ in 0..<3000 where !log().contains("fault GET:hold") { try await Task.sleep(for: .milliseconds(20)) }
        #expect(log().contains("fault GET:hold"), "\(log())")
        try await s3.boto3("s3.put_object(Bucket=\"\(bucket)\", Key=\"\(key)\", Body=b\"replaced\")")
        _ = FileManager.default.createFile(atPath: released, contents: nil)
        let result = try await restoring
        #expect(result.exitCode == 1)
        #expect(
            result.errorLines == [
                """
                pgclone: error: the object changed in s3://\(bucket)/ while it was being read (its ETag no longer \
                matches); restore again; \"\(target)\" is unchanged
                """
            ],
            "\(result)"
        )
        #expect(try await server.databases(startingWith: target).isEmpty)
    }
}

extension S3FaultTests {
    @Test func sigtermDuringAnS3DownloadLeavesTheTargetIntact() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let dumped = try await pgclone.dumpToNewBucket(s3, prefix: "s3sig_src")
        let (bucket, key) = (dumped.bucket, dumped.key)
        let target = TestEnvironment.uniqueName("s3sig_dst")
        try await server.createDatabase(target)
        try await server.psql("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('old')", database: target)

        // The first part stalls for long: the restore is in the middle of its download.
        let (proxied, log, stop) = try await s3.behindFaultyProxy(["GET:stall:1000:60"])
        defer { stop() }
        var proxiedEnvironment = proxied.environment(location: "s3://\(bucket)")
        proxiedEnvironment["PGCLONE_S3_PART_SIZE"] = "256KiB"
        proxiedEnvironment["PGCLONE_S3_PARTS_IN_FLIGHT"] = "1"
        async let restoring = pgclone.run(
            ["restore", key, "--database", server.url(target)],
            environment: proxiedEnvironment
        )
        while !log().contains("fault GET:stall") { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!pgclone.signal(SIGTERM).isEmpty)
        let result = try await restoring
        #expect(result.exitCode == 128 + SIGTERM, "\(result)")
        #expect(try await server.psql("SELECT v FROM marker", database: target) == "old")
        #expect(try await server.databases(startingWith: target) == [target])
        #expect(try await pgclone.processesAlive(after: .seconds(15)).isEmpty)
    }
}

extension S3Tests {
    @Test func partsGrowAndLargeOnesAreSpooledToDisk() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = try await database(server, "s3_grow", rows: 40_000)
        let target = TestEnvironment.uniqueName("s3_grow_dst")
        let bucket = try await s3.makeBucket()
        let spool = try pgclone.makeDirectory("spool")
        var environment = s3.environment(location: "s3://\(bucket)")
        // 64 KiB parts doubling every 2 parts: 64, 64, 128, 128, 256, 256 KiB…; from part 3 on spooled.
        environment["PGCLONE_S3_PART_SIZE"] = "64KiB"
        environment["PGCLONE_S3_PARTS_PER_SIZE"] = "2"
        environment["TMPDIR"] = spool

        let dumped = try await pgclone.run(
            ["dump", "--database", server.url(source), "--log-level", "debug"],
            environment: environment
        )
        #expect(dumped.exitCode == 0, "\(dumped)")
        #expect(dumped.stderr.contains("pgclone: debug: spooled upload part 3 (128 KiB) to \(spool)"), "\(dumped)")
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let etag = try await s3.etag(bucket, key)
        let parts = Int(etag.split(separator: "-").last?.filter(\.isNumber) ?? "") ?? 0
        #expect((7...12).contains(parts), "ETag \(etag)")
        // Spooled parts are unlinked files: nothing is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty)

        let restored = try await pgclone.run(
            ["restore", key, "--database", server.url(target)],
            environment: environment
        )
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await server.tableFingerprints(target) == server.tableFingerprints(source))
    }
}
