import PGCloneStreams

/// Where and how to reach a bucket: the location's bucket and prefix, the endpoint (AWS's
/// virtual-hosted style, or an S3-compatible server's URL with path-style addressing), the region,
/// TLS and transfer sizes.
package struct S3Configuration: Sendable, Hashable {
    package var bucket: String
    /// The key prefix, empty or ending in `/`.
    package var prefix: String
    package var region: String
    /// `scheme://host[:port]` of an S3-compatible server; `nil` for AWS.
    package var endpoint: String?
    /// A CA bundle for TLS verification (`AWS_CA_BUNDLE`); the system's otherwise.
    package var caBundle: String?
    /// Ranged GETs in flight, the size of each range, and the window each streams into: a download
    /// holds concurrency × window, whatever the range size.
    package var downloadConcurrency: Int
    /// `PGCLONE_S3_PART_SIZE` when set: every range that size, whatever the object's.
    package var fixedDownloadPartSize: Int?
    package var downloadWindow: Int

    /// The range size for an object of `size` bytes: an eighth of it, from 8 MiB (the AWS CLI's
    /// chunk) to 64 MiB (rclone's). Ranges are read in order and those ahead only fill their window,
    /// so the size costs neither memory nor parallelism; it sets the number of requests, each a
    /// first-byte latency on S3 and, on moto, a read of the whole object (BENCHMARKS.md: 18 CPU
    /// seconds of moto for 63 ranges of a 500 MiB dump).
    package func downloadPartSize(forObjectOf size: Int) -> Int {
        if let fixedDownloadPartSize { return fixedDownloadPartSize }
        let mebibyte = 1 << 20
        let eighth = (size / 8 + mebibyte - 1) / mebibyte * mebibyte
        return min(64 * mebibyte, max(8 * mebibyte, eighth))
    }
    /// Multipart uploads in flight and the part size (S3's minimum is 5 MiB but for the last part).
    package var uploadConcurrency: Int
    package var uploadPartSize: Int
    /// Upload part sizes: growing so that 10,000 parts hold 5 TiB (see ``PartSchedule``).
    package var partSchedule: PartSchedule {
        PartSchedule(base: uploadPartSize, partsPerSize: partsPerSize, memoryLimit: uploadPartSize)
    }
    package var partsPerSize = 900
    /// Where parts larger than ``uploadPartSize`` are spooled: `TMPDIR`, else `/tmp`.
    package var spoolDirectory = "/tmp"
    /// Seconds a transfer may go without receiving or sending a byte before it counts as stalled
    /// and is retried (resumed, for a download).
    package var stallTimeout = 30

    /// Parses `s3://bucket/prefix` and reads the endpoint and region as the AWS CLI does.
    /// - Parameters:
    ///   - partsInFlight: ranges downloaded (and parts uploaded) at once, from the memory budget.
    ///   - partSize: bytes of each range's window, and of an upload part, from the memory budget.
    /// - Throws: ``S3ClientError`` of kind `configuration` for a location or variable it cannot use.
    package init(
        location: String,
        environment: [String: String],
        profileRegion: String?,
        profileEndpoint: String? = nil,
        partsInFlight: Int,
        partSize: Int
    ) throws(S3ClientError) {
        guard location.hasPrefix("s3://") else {
            throw S3ClientError(.configuration, "\(location) is not an s3://bucket/prefix location")
        }
        let path = location.dropFirst("s3://".count)
        let bucket = path.prefix { $0 != "/" }
        // Not echoed: what comes before the "@" may be a key and its secret (which may hold a "/").
        guard !bucket.contains("@"), !(path.lastIndex(of: "@").map { path[..<$0].contains(":") } ?? false) else {
            throw S3ClientError(
                .configuration,
                """
                an s3:// location names no user or password (this one has one before an "@"): give the \
                credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a profile, and the location as \
                s3://bucket/prefix
                """
            )
        }
        guard bucket.count >= 3, bucket.count <= 63,
            bucket.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") })
        else {
            throw S3ClientError(
                .configuration,
                """
                \"\(bucket)\" in \(location) is not a bucket name (3 to 63 lowercase letters, digits, dots and \
                hyphens)
                """
            )
        }
        guard let firstCharacter = bucket.first, let lastCharacter = bucket.last,
            firstCharacter.isLetter || firstCharacter.isNumber,
            lastCharacter.isLetter || lastCharacter.isNumber, !bucket.contains("..")
        else {
            throw S3ClientError(
                .configuration,
                """
                \"\(bucket)\" in \(location) is not a bucket name (it must begin and end with a letter or digit, \
                without \"..\")
                """
            )
        }
        self.bucket = String(bucket)
        var prefix = path.dropFirst(bucket.count + 1)
        while prefix.hasSuffix("/") { prefix.removeLast() }
        // HTTP clients resolve `.` and `..` in a URL's path (s3://bucket/../x would address the
        // bucket x), and an empty segment is a mistake.
        if !prefix.isEmpty,
            prefix.split(separator: "/", omittingEmptySubsequences: false).contains(where: {
                $0.isEmpty || $0 == "." || $0 == ".."
            })
        {
            throw S3ClientError(
                .configuration,
                """
                the prefix \"\(prefix)\" in \(location) has an empty, \".\" or \"..\" segment; write the prefix \
                as it is, e.g. s3://\(bucket)/dumps
                """
            )
        }
        self.prefix = prefix.isEmpty ? "" : prefix + "/"

        // As the AWS CLI: the service's variable, the global one, then the profile's `endpoint_url`,
        // unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS; pgclone's own variable first, always.
        let ignoreConfigured = environment["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"]?.lowercased() == "true"
        let endpointVariables =
            ignoreConfigured
            ? ["PGCLONE_S3_ENDPOINT_URL"] : ["PGCLONE_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        let configured = endpointVariables.lazy.compactMap { name in
            environment[name].flatMap { $0.isEmpty ? nil : (name, $0) }
        }.first
        let fromProfile =
            ignoreConfigured ? nil : profileEndpoint.flatMap { $0.isEmpty ? nil : ("the profile's endpoint_url", $0) }
        if let (variable, value) = configured ?? fromProfile {
            self.endpoint = try Self.endpoint(value, from: variable)
        }
        region =
            ["AWS_REGION", "AWS_DEFAULT_REGION"].lazy.compactMap { environment[$0] }.first { !$0.isEmpty }
            ?? profileRegion ?? "us-east-1"
        caBundle = environment["AWS_CA_BUNDLE"].flatMap { $0.isEmpty ? nil : $0 }

        downloadConcurrency = partsInFlight
        downloadWindow = partSize
        // S3's smallest part (but for the last) is 5 MiB; one part fills while the others upload.
        uploadPartSize = max(5 << 20, partSize)
        uploadConcurrency = max(1, partsInFlight * partSize / uploadPartSize - 1)
        if let text = environment["PGCLONE_S3_PART_SIZE"], !text.isEmpty {
            guard let size = ByteCount(parsing: text), size.bytes >= 64 << 10 else {
                throw S3ClientError(
                    .configuration,
                    "PGCLONE_S3_PART_SIZE must be a size of at least 64KiB (it is \"\(text)\")"
                )
            }
            fixedDownloadPartSize = size.bytes
            uploadPartSize = size.bytes
        }
        spoolDirectory = temporaryDirectory(environment)
        if let text = environment["PGCLONE_S3_PARTS_PER_SIZE"], !text.isEmpty {
            guard let count = Int(text), count > 0 else {
                throw S3ClientError(
                    .configuration,
                    "PGCLONE_S3_PARTS_PER_SIZE must be a positive number (it is \"\(text)\")"
                )
            }
            partsPerSize = count
        }
        if let text = environment["PGCLONE_S3_STALL_TIMEOUT"], !text.isEmpty {
            guard let seconds = Int(text), seconds > 0 else {
                throw S3ClientError(
                    .configuration,
                    "PGCLONE_S3_STALL_TIMEOUT must be a number of seconds (it is \"\(text)\")"
                )
            }
            stallTimeout = seconds
        }
        if let text = environment["PGCLONE_S3_PARTS_IN_FLIGHT"], !text.isEmpty {
            guard let count = Int(text), (1...64).contains(count) else {
                throw S3ClientError(.configuration, "PGCLONE_S3_PARTS_IN_FLIGHT must be 1 to 64 (it is \"\(text)\")")
            }
            downloadConcurrency = count
            uploadConcurrency = count
        }
    }

    /// The URL of `key` (already prefixed), with `query` (sorted and encoded by the caller).
    /// `value`, a custom endpoint's URL from `variable`, without its trailing `/`s: `http://` or
    /// `https://`, a host, a port from 1 to 65535 if any, and a path at most (which bucket paths
    /// follow). Credentials in it are refused (requests are signed with the AWS credentials, and
    /// libcurl would send them as well), and never shown.
    /// - Throws: ``S3ClientError`` `.configuration`, saying what is wrong.
    static func endpoint(_ value: String, from variable: String) throws(S3ClientError) -> String {
        func refuse(_ problem: String) -> S3ClientError {
            // Masked only here: the masking's regular expressions cost memory to build.
            S3ClientError(.configuration, "\(variable) \(problem) (it is \"\(URLPassword.redactingAll(in: value))\")")
        }
        guard value.contains("://") else {
            // Not shown: what is no URL may be anything, a secret set in the wrong variable too.
            throw S3ClientError(
                .configuration,
                "\(variable) is not a URL; give an http:// or https:// URL, e.g. http://127.0.0.1:9000"
            )
        }
        guard let url = HTTPEndpoint(value) else { throw refuse("must be an http:// or https:// URL") }
        guard !url.hasUserInfo else {
            throw S3ClientError(
                .configuration,
                """
                \(variable) must not hold a user name or password: requests are signed with the AWS \
                credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile)
                """
            )
        }
        guard !url.host.isEmpty else { throw refuse("names no host") }
        if url.hasInvalidPort { throw refuse("has a port that is not a number") }
        if let port = url.port, !(1...65535).contains(port) {
            throw refuse("has port \(port), which is not a port (1 to 65535)")
        }
        guard !url.hasQueryOrFragment else {
            throw refuse("must be a URL without a query or fragment (a host, a port, a path at most)")
        }
        var endpoint = value
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        return endpoint
    }

    package func url(key: String, query: String = "") -> String {
        let path = S3Encoding.path(key)
        let base: String
        if let endpoint {
            base = "\(endpoint)/\(bucket)/\(path)"
        } else if bucket.contains(".") {
            // Dots break the wildcard certificate of virtual-hosted names: path style instead.
            base = "https://s3.\(region).amazonaws.com/\(bucket)/\(path)"
        } else {
            base = "https://\(bucket).s3.\(region).amazonaws.com/\(path)"
        }
        return query.isEmpty ? base : "\(base)?\(query)"
    }

    /// For messages: `s3://bucket/prefix`.
    package var location: String { "s3://\(bucket)/\(prefix)" }
}

/// Percent-encoding as SigV4 specifies: everything but `A-Z a-z 0-9 - . _ ~` as `%XX` of its UTF-8
/// bytes; `/` kept in paths.
package enum S3Encoding {
    package static func path(_ key: String) -> String {
        encode(key, keepingSlash: true)
    }

    /// `key=value` pairs sorted by key, as libcurl signs the query exactly as written
    /// (PLATFORM.md §5); valueless parameters as `name=`.
    package static func query(_ parameters: [(String, String)]) -> String {
        parameters.sorted { $0.0 < $1.0 }.map {
            "\(encode($0.0, keepingSlash: false))=\(encode($0.1, keepingSlash: false))"
        }
        .joined(separator: "&")
    }

    static func encode(_ text: String, keepingSlash: Bool) -> String {
        percentEncode(text, keeping: keepingSlash ? [UInt8(ascii: "/")] : [])
    }
}
