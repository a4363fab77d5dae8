import PGCloneS3
import Testing

@Suite struct S3ConfigurationTests {
    private func configuration(
        _ location: String,
        _ environment: [String: String] = [:],
        profileRegion: String? = nil,
        profileEndpoint: String? = nil
    ) throws -> S3Configuration {
        try S3Configuration(
            location: location,
            environment: environment,
            profileRegion: profileRegion,
            profileEndpoint: profileEndpoint,
            partsInFlight: 4,
            partSize: 2 << 20
        )
    }

    @Test func locationsAndAWSURLs() throws {
        let plain = try configuration("s3://my-bucket/backups/nightly/")
        #expect(plain.bucket == "my-bucket")
        #expect(plain.prefix == "backups/nightly/")
        #expect(plain.region == "us-east-1")
        #expect(plain.endpoint == nil)
        #expect(plain.url(key: "backups/db/x.dump") == "https://my-bucket.s3.us-east-1.amazonaws.com/backups/db/x.dump")
        #expect(try configuration("s3://my-bucket").prefix == "")
        #expect(try configuration("s3://my-bucket/p").prefix == "p/")
        // Dotted buckets would not match the wildcard certificate: path style.
        #expect(
            try configuration("s3://my.bucket/p", ["AWS_REGION": "eu-west-1"]).url(key: "p/k")
                == "https://s3.eu-west-1.amazonaws.com/my.bucket/p/k"
        )
    }

    @Test func keysAndQueriesArePercentEncodedAsSigV4Requires() throws {
        let s3 = try configuration("s3://bucket/pre fix+", ["PGCLONE_S3_ENDPOINT_URL": "http://127.0.0.1:9000/"])
        #expect(s3.url(key: "pre fix+/dé/a~b_c-d.e") == "http://127.0.0.1:9000/bucket/pre%20fix%2B/d%C3%A9/a~b_c-d.e")
        #expect(
            S3Encoding.query([("uploadId", "a/b+c="), ("partNumber", "2"), ("uploads", "")])
                == "partNumber=2&uploadId=a%2Fb%2Bc%3D&uploads="
        )
    }

    @Test func endpointAndRegionPrecedence() throws {
        let environment = [
            "AWS_ENDPOINT_URL": "http://general:1", "AWS_ENDPOINT_URL_S3": "http://s3:2",
            "AWS_DEFAULT_REGION": "eu-central-1",
        ]
        #expect(try configuration("s3://bucket", environment).endpoint == "http://s3:2")
        var overridden = environment
        overridden["PGCLONE_S3_ENDPOINT_URL"] = "https://pgclone:3"
        overridden["AWS_REGION"] = "ap-south-1"
        #expect(try configuration("s3://bucket", overridden).endpoint == "https://pgclone:3")
        #expect(try configuration("s3://bucket", overridden).region == "ap-south-1")
        #expect(try configuration("s3://bucket", environment).region == "eu-central-1")
        #expect(try configuration("s3://bucket", [:], profileRegion: "us-west-2").region == "us-west-2")
        // The profile's endpoint_url comes after the variables; AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
        // leaves both AWS ones out (pgclone's own variable still counts).
        let profile = "http://profile:4/"
        #expect(try configuration("s3://bucket", [:], profileEndpoint: profile).endpoint == "http://profile:4")
        #expect(try configuration("s3://bucket", environment, profileEndpoint: profile).endpoint == "http://s3:2")
        var ignoring = environment
        ignoring["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true"
        #expect(try configuration("s3://bucket", ignoring, profileEndpoint: profile).endpoint == nil)
        ignoring["PGCLONE_S3_ENDPOINT_URL"] = "https://pgclone:3"
        #expect(try configuration("s3://bucket", ignoring, profileEndpoint: profile).endpoint == "https://pgclone:3")
    }

    @Test(arguments: ["s3://", "s3://ab", "s3://Upper/x", "s3://under_score", "http://bucket"])
    func badLocationsAreRefused(_ location: String) {
        #expect(throws: S3ClientError.self) { try configuration(location) }
    }

    /// A user and password in the location (as in other URLs) are refused without being shown.
    @Test func aPasswordInTheLocationIsRefusedUnshown() {
        let error = #expect(throws: S3ClientError.self) { try configuration("s3://user:Pw123@bucket/x") }
        #expect(error.map { !"\($0)".contains("Pw123") && "\($0)".contains("names no user or password") } == true)
    }

    /// A custom endpoint that is no S3 endpoint is one line saying what is wrong with it, before
    /// any request (libcurl would say "bad/illegal format" six times, retried), and credentials
    /// in it are refused, and shown to no one.
    @Test(arguments: [
        ("ftp://u:Secret1@h", "must be an http:// or https:// URL (it is \"ftp://u:****@h\")"),
        ("not a url Secret1", "is not a URL; give an http:// or https:// URL, e.g. http://127.0.0.1:9000"),
        ("https://h:99999", "has port 99999, which is not a port (1 to 65535) (it is \"https://h:99999\")"),
        ("http://h:0", "has port 0, which is not a port"),
        ("http://h:9x", "has a port that is not a number"),
        ("http://[::1]:70000/s3", "has port 70000, which is not a port"),
        ("http:///path", "names no host"),
        ("http://h/?X-Amz-Signature=Secret1", "must be a URL without a query or fragment"),
        ("http://u:Secret1@h:9000", "must not hold a user name or password"),
    ])
    func badEndpointsAreRefusedUnshown(_ endpoint: String, _ problem: String) {
        let error = #expect(throws: S3ClientError.self) {
            try configuration("s3://bucket", ["AWS_ENDPOINT_URL": endpoint])
        }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains("AWS_ENDPOINT_URL " + problem), "\(message)")
        #expect(!message.contains("Secret1"), "\(message)")
    }

    @Test func endpointsWithAPathOrIPv6AreTaken() throws {
        #expect(
            try configuration("s3://bucket", ["AWS_ENDPOINT_URL": "http://[::1]:9000/s3/"]).endpoint
                == "http://[::1]:9000/s3"
        )
        #expect(try configuration("s3://bucket", ["AWS_ENDPOINT_URL": "HTTPS://minio"]).endpoint == "HTTPS://minio")
    }
}
