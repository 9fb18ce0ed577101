// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "delegation-queue",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "DelegationStore", targets: ["DelegationStore"]),
        .library(name: "DelegationTool", targets: ["DelegationTool"]),
        .library(name: "DelegationWorker", targets: ["DelegationWorker"]),
        .executable(name: "delegation-worker", targets: ["delegation-worker"]),
        .executable(name: "delegation-admin", targets: ["delegation-admin"]),
        .executable(name: "delegation-demo", targets: ["delegation-demo"]),
        .executable(name: "delegation-mcp", targets: ["delegation-mcp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // The system SQLite (Debian's libsqlite3-dev), not a vendored amalgamation: operators patch it with the OS.
        .systemLibrary(
            name: "CSQLite",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]
        ),

        // Reads migrations/*.sql at build time and embeds them, so the shipped binary applies exactly those files.
        .executableTarget(name: "MigrationEmbedder"),
        .plugin(
            name: "MigrationEmbedderPlugin",
            capability: .buildTool(),
            dependencies: ["MigrationEmbedder"]
        ),

        // The store's private SQLite layer (GRDB-style Database, Statement, Row, SQLiteError): imported by
        // DelegationStore (internally), tests, benchmarks and probes only — never by the worker or the CLI.
        .target(name: "SQLiteDatabase", dependencies: ["CSQLite"]),
        // The queue's one door: named operations on plain values; the schema and its migrations.
        .target(
            name: "DelegationStore",
            dependencies: [
                "CSQLite", "SQLiteDatabase",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            plugins: ["MigrationEmbedderPlugin"]
        ),
        // The tool's surface: the JSON value type, the seed-compatible answers and RBAC (CLI and MCP share it).
        .target(
            name: "DelegationTool",
            dependencies: ["DelegationStore", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "DelegationWorker",
            dependencies: [
                "DelegationStore", "DelegationTool",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Loopback HTTP servers that behave like the platform and A2A peers: used by the demo, tests and benchmarks.
        .target(
            name: "DelegationFakes",
            dependencies: [
                "DelegationStore", "DelegationTool", "DelegationWorker",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "delegation-worker",
            dependencies: [
                "DelegationWorker",
                "DelegationStore",
                "DelegationLogging",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // `swift run delegation-demo`: the whole path against loopback fakes, in a binary of its own.
        .executableTarget(
            name: "delegation-demo",
            dependencies: [
                "DelegationWorker", "DelegationFakes", "DelegationStore", "DelegationTool",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Logs on stderr as text or one JSON object per line (--log-format / LOG_FORMAT), for every program.
        .target(name: "DelegationLogging", dependencies: [.product(name: "Logging", package: "swift-log")]),
        // The delegation tools over the Model Context Protocol (stdio), for agents.
        .target(
            name: "DelegationMCP",
            dependencies: [
                "DelegationStore", "DelegationTool",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "delegation-mcp",
            dependencies: [
                "DelegationMCP", "DelegationStore", "DelegationTool", "DelegationLogging",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "delegation-admin",
            dependencies: [
                "DelegationStore", "DelegationTool", "DelegationLogging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // A second process for the store's tests (concurrent claims, a crash while holding the write lock).
        .executableTarget(
            name: "store-probe",
            dependencies: ["DelegationStore", "SQLiteDatabase", "CSQLite"],
            path: "Tests/StoreProbe"
        ),
        // Benchmarks with baselines measured in the same run (README "Benchmarks").
        .executableTarget(
            name: "delegation-bench",
            dependencies: [
                "DelegationStore", "DelegationWorker", "DelegationFakes", "DelegationTool", "SQLiteDatabase", "CSQLite",
                "ChildProcess", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/delegation-bench"
        ),
        // Several real workers on one database, SIGKILLed at random while delegations flow (scripts/chaos.sh).
        .executableTarget(
            name: "delegation-chaos",
            dependencies: [
                "DelegationStore", "DelegationFakes", "DelegationTool", "SQLiteDatabase", "ChildProcess",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Chaos"
        ),
        // Child processes without Foundation's Process (see SpawnedProcess): tests, chaos run, benchmarks.
        .target(name: "ChildProcess", path: "Tests/ChildProcess"),
        // What the test targets share: temporary directories, child processes, a raw C-API connection.
        .target(
            name: "TestSupport",
            dependencies: [
                "DelegationStore", "DelegationTool", "SQLiteDatabase", "CSQLite", "ChildProcess",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "DelegationStoreTests",
            dependencies: [
                "DelegationStore", "DelegationTool", "SQLiteDatabase", "CSQLite", "store-probe", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "DelegationMCPTests",
            dependencies: [
                "DelegationMCP", "DelegationStore", "DelegationTool", "TestSupport", "ChildProcess", "delegation-mcp",
                .product(name: "MCP", package: "swift-sdk"),
            ]
        ),
        .testTarget(
            name: "DelegationAdminTests",
            dependencies: ["DelegationStore", "DelegationTool", "SQLiteDatabase", "CSQLite", "TestSupport", "delegation-admin"]
        ),
        // Crash and fault suite: the short chaos run and the bad-input catalogue.
        .testTarget(
            name: "FaultTests",
            dependencies: [
                "DelegationStore", "DelegationWorker", "DelegationFakes", "DelegationTool", "SQLiteDatabase", "CSQLite",
                "TestSupport", "delegation-admin", "delegation-worker", "delegation-chaos", "store-probe",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "DelegationWorkerTests",
            dependencies: [
                "DelegationWorker", "DelegationFakes", "DelegationStore", "DelegationTool", "SQLiteDatabase", "TestSupport",
                "delegation-worker", "delegation-demo", "delegation-admin", "store-probe", "DelegationLogging",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ]
)
