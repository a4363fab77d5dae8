// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
]

// Linux only: the code calls glibc (`import Glibc`), reads /proc and uses prctl(2); no Apple
// platform is claimed.
let package = Package(
    name: "pgclone",
    products: [.executable(name: "pgclone", targets: ["pgclone"])],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", exact: "1.0.2", traits: []),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CPGCloneLibPQ",
            path: "Sources/CPGCloneLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        .systemLibrary(
            name: "CPGCloneCurl",
            path: "Sources/CPGCloneCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"]), .brew(["curl"])]
        ),
        .systemLibrary(
            name: "CPGCloneZstd",
            path: "Sources/CPGCloneZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]
        ),
        .target(name: "CPGCloneSystem", path: "Sources/CPGCloneSystem"),
        .target(
            name: "PGCloneStreams",
            dependencies: [
                "CPGCloneZstd",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Sources/Streams",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PGCloneMetrics",
            dependencies: [
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Sources/Metrics",
            swiftSettings: swiftSettings
        ),
        // The S3 client (libcurl transport, SigV4's quirks, XML, multipart upload, ranged download,
        // the credential chain): a module of its own below Actors/, testable without PostgreSQL.
        .target(
            name: "PGCloneS3",
            dependencies: [
                "PGCloneStreams",
                "PGCloneMetrics",
                "CPGCloneCurl",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Actors/S3",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PGCloneActors",
            dependencies: [
                "PGCloneStreams",
                "PGCloneMetrics",
                "PGCloneS3",
                "CPGCloneLibPQ",
                "CPGCloneSystem",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Actors",
            exclude: ["S3"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "pgclone",
            dependencies: [
                "PGCloneActors",
                "PGCloneS3",
                "PGCloneStreams",
                "PGCloneMetrics",
                "CPGCloneSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Sources/CLI",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PGCloneTestSupport",
            dependencies: [
                "PGCloneStreams",
                "PGCloneActors",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StreamsTests",
            dependencies: [
                "PGCloneStreams",
                "PGCloneTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ActorsTests",
            dependencies: [
                "PGCloneActors",
                "PGCloneS3",
                "PGCloneStreams",
                "PGCloneMetrics",
                "PGCloneTestSupport",
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "S3Tests",
            dependencies: [
                "PGCloneS3",
                "PGCloneStreams",
                "PGCloneMetrics",
                "CPGCloneCurl",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MetricsTests",
            dependencies: ["PGCloneMetrics"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["PGCloneTestSupport", "PGCloneStreams", "PGCloneActors"],
            swiftSettings: swiftSettings
        ),
    ]
)
