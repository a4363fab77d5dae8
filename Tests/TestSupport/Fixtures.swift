package import Foundation
package import NIOCore
package import PGCloneStreams

/// SQL that several suites build their databases from.
package enum Fixtures {
    /// A table whose restore keeps PostgreSQL busy: a CHECK sleeps `milliseconds` on every fourth
    /// of `rows` rows of 2 KiB, so pg_restore's stdin fills up and the steps before it wait.
    package static func slowRestoreSQL(rows: Int, milliseconds: Int = 2) -> String {
        """
        CREATE FUNCTION slow(integer) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN
                IF $1 % 4 = 0 AND current_setting('fixtures.fast', true) IS DISTINCT FROM 'on' THEN
                    PERFORM pg_sleep(\(Double(milliseconds) / 1000));
                END IF;
                RETURN true;
            END $$;
        CREATE TABLE slow_rows (i integer CHECK (slow(i)), payload text);
        -- Made at full speed; only the restore's COPY sleeps.
        SET fixtures.fast = 'on';
        INSERT INTO slow_rows
            SELECT i, (SELECT string_agg(md5(i::text || '-' || j::text), '') FROM generate_series(1, 64) AS j)
            FROM generate_series(1, \(rows)) AS i;
        """
    }
}

/// A database dumped to a bucket of its own, and what reaches it.
package struct S3Dump: Sendable {
    package var source: String
    package var bucket: String
    package var key: String
    /// pgclone's environment for the bucket, with 256 KiB parts so that small dumps take several.
    package var environment: [String: String?]
}

extension PGCloneHarness {
    /// A target database `prefix_dst_…` whose table `marker` holds 'old', and the key of a dump of
    /// `prefix_src_…` whose `marker` holds 'new', both made by this harness's user.
    package func targetAndDump(_ prefix: String) async throws -> (key: String, target: String) {
        let source = TestEnvironment.uniqueName("\(prefix)_src")
        let target = TestEnvironment.uniqueName("\(prefix)_dst")
        try await server.createDatabase(source)
        try await server.psql("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('new')", database: source)
        try await server.createDatabase(target)
        try await server.psql("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('old')", database: target)
        return (try await dump(source), target)
    }

    /// A new database `prefix_…` with a table `t` of `rows` rows (and `extraSQL`), dumped to a new
    /// bucket of `s3`.
    package func dumpToNewBucket(
        _ s3: S3TestServer,
        prefix: String,
        rows: Int = 40_000,
        extraSQL: String = ""
    ) async throws -> S3Dump {
        let source = TestEnvironment.uniqueName(prefix)
        try await server.createDatabase(source)
        try await server.psql(
            """
            CREATE TABLE t AS SELECT i, md5(i::text) || md5((i * 3)::text) AS h FROM generate_series(1, \(rows)) \
            AS i; \(extraSQL)
            """,
            database: source
        )
        let bucket = try await s3.makeBucket()
        var environment = s3.environment(location: "s3://\(bucket)")
        environment["PGCLONE_S3_PART_SIZE"] = "256KiB"
        let dumped = try await run(["dump", "--database", server.url(source)], environment: environment)
        guard dumped.exitCode == 0 else { throw TestSetupError("dump failed: \(dumped)") }
        return S3Dump(
            source: source,
            bucket: bucket,
            key: dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
            environment: environment
        )
    }
}

/// Stored objects made with pgclone's own encoder.
package enum ZstdFixtures {
    /// `archive` as pgclone stores a dump: zstd frames, after a metadata frame if one is given.
    package static func encode(
        _ archive: [UInt8],
        settings: ZstdCompressionSettings = ZstdCompressionSettings(),
        metadata: DumpMetadata? = nil
    ) async throws -> [UInt8] {
        let (input, inputSource) = ByteStream.makeStream(backpressureStrategy: .capacity(.kibibytes(256)))
        let (output, outputSource) = ByteStream.makeStream(backpressureStrategy: .capacity(.kibibytes(256)))
        let encoder = DumpEncoder(settings: settings)
        async let encoded = encoder.encode(input, into: outputSource, metadata: metadata)
        async let fed: Void = feed(archive, into: inputSource, chunk: 100_000)
        var stored: [UInt8] = []
        for try await chunk in output { stored += chunk.readableBytesView }
        try await fed
        guard try await encoded == stored.count else {
            throw TestSetupError("the encoder's count differs from what it wrote")
        }
        return stored
    }

    package static func feed(_ bytes: [UInt8], into source: ByteStream.Source, chunk: Int) async throws {
        var offset = 0
        while offset < bytes.count {
            try await source.write(ByteBuffer(bytes: bytes[offset..<min(offset + chunk, bytes.count)]))
            offset += chunk
        }
        source.finish()
    }
}
