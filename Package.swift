// swift-tools-version:6.1
// The package of the Teleport-class access platform: one daemon (`teleport`), the user client (`tsh`)
// and the admin tool (`tctl`). Module layering is documented in docs/architecture.md; imports only
// point down the layers, and scripts/check_layering.py fails CI when `tsh` or `tctl` would link the
// auth server, a backend or the web framework.

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let nioSSL = Target.Dependency.product(name: "NIOSSL", package: "swift-nio-ssl")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
let x509 = Target.Dependency.product(name: "X509", package: "swift-certificates")
let asn1 = Target.Dependency.product(name: "SwiftASN1", package: "swift-asn1")
let yams = Target.Dependency.product(name: "Yams", package: "Yams")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "teleport-swift",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "teleport", targets: ["teleport"]),
        .executable(name: "tsh", targets: ["tsh"]),
        .executable(name: "tctl", targets: ["tctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-ssh.git", from: "0.15.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // HTTP/2 for kubectl at the proxy (already in the graph through Hummingbird).
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
    ],
    targets: [
        // Layer 0: a C shim for what Glibc's Swift module does not expose (pseudo-terminals, window size).
        .target(name: "CTeleportShims", linkerSettings: [.linkedLibrary("z")]),
        // Layer 0: types and crypto, no I/O.
        .target(name: "TeleportAPI", dependencies: [yams], swiftSettings: swiftSettings),
        // Layer 0: wire formats parsed without I/O (the TLS ClientHello the web port routes on).
        .target(name: "TeleportWire", swiftSettings: swiftSettings),
        .target(
            name: "TeleportCrypto",
            dependencies: ["TeleportAPI", crypto, x509, asn1],
            swiftSettings: swiftSettings
        ),
        // Layer 1: one HTTP/1.1 request and reply over a connected channel, for our small HTTPS clients.
        .target(
            name: "TeleportHTTP",
            dependencies: ["TeleportAPI", nioCore, .product(name: "NIOHTTP1", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Layer 1: storage contract and audit.
        .target(name: "TeleportBackend", dependencies: ["TeleportAPI", logging], swiftSettings: swiftSettings),
        .target(name: "TeleportAccess", dependencies: ["TeleportAPI"], swiftSettings: swiftSettings),
        .target(
            name: "TeleportEvents",
            dependencies: ["TeleportAPI", "CTeleportShims", logging, crypto, .product(name: "Metrics", package: "swift-metrics")],
            swiftSettings: swiftSettings),
        // Layer 2: real backends, typed stores, the auth API client.
        .target(
            name: "TeleportBackendSQLite",
            dependencies: [
                "TeleportBackend", "TeleportAPI", logging, nioCore, nioPosix,
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TeleportBackendEtcd",
            dependencies: [
                "TeleportBackend", "TeleportAPI", "TeleportHTTP", logging, nioCore, nioPosix, nioSSL, .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Layer 1: Hummingbird servers on sockets a graceful restart hands over (issue 19).
        .target(
            name: "TeleportHTTPListener",
            dependencies: [
                "TeleportAPI", logging, nioCore, nioPosix, .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TeleportBackendPostgres",
            dependencies: [
                "TeleportBackend", "TeleportAPI", "TeleportEvents", logging, nioCore, nioPosix, nioSSL,
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TeleportServices",
            dependencies: ["TeleportBackend", "TeleportAPI", "TeleportCrypto", logging],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TeleportSSH",
            dependencies: [
                "TeleportAPI", "TeleportCrypto", "TeleportEvents", "CTeleportShims", logging, nioCore, nioPosix,
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TeleportAuthClient",
            dependencies: [
                "TeleportAPI", "TeleportCrypto", "TeleportHTTP", logging, nioCore, nioPosix, nioSSL, x509, asn1, crypto,
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Layer 3: the SSH client core (connect, certificate auth, host-key check, channels, SFTP),
        // shared by `tsh` and the services that dial agents; it imports no service and no CLI.
        .target(
            name: "TeleportSSHClient",
            dependencies: [
                "TeleportAPI", "TeleportCrypto", "TeleportSSH", "CTeleportShims", nioCore, nioPosix,
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
            ],
            swiftSettings: swiftSettings
        ),
        // Layer 3: reverse tunnels (the proxy's and the agent's ends) and the one dialer.
        .target(
            name: "TeleportTunnel",
            dependencies: [
                "TeleportAPI", "TeleportCrypto", "TeleportSSH", "TeleportAuthClient", logging, nioCore, nioPosix, nioSSL, x509, crypto,
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Layer 3: session recordings on a host's disk and their upload (nodes, database services).
        .target(
            name: "TeleportRecording",
            dependencies: [
                "TeleportAPI", "TeleportEvents", "TeleportAuthClient", "CTeleportShims", logging, nioCore,
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Layer 4: the services. They never import each other.
        .target(
            name: "TeleportAuthServer",
            dependencies: [
                "TeleportAPI", "TeleportAccess", "TeleportCrypto", "TeleportBackend", "TeleportServices", "TeleportEvents",
                "TeleportHTTPListener", "TeleportHTTP", "TeleportAuthClient", logging, nioCore, nioPosix, nioSSL, x509, crypto,
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TeleportProxy",
            dependencies: [
                "TeleportAPI", "TeleportAccess", "TeleportCrypto", "TeleportAuthClient", "TeleportSSH", "TeleportEvents", "TeleportWire",
                "TeleportTunnel", "TeleportHTTPListener", logging, nioCore,
                nioPosix, nioSSL, x509, crypto,
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                "TeleportSSHClient",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TeleportNode",
            dependencies: [
                "TeleportAPI", "TeleportAccess", "TeleportCrypto", "TeleportAuthClient", "TeleportSSH", "TeleportEvents", "CTeleportShims",
                "TeleportTunnel", "TeleportRecording", logging, nioCore, nioPosix, nioSSL,
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TeleportDatabase",
            dependencies: [
                "TeleportAPI", "TeleportAccess", "TeleportCrypto", "TeleportAuthClient", "TeleportSSH", "TeleportEvents", "TeleportWire",
                "TeleportTunnel", "TeleportRecording", logging, nioCore, nioPosix, nioSSL, x509, crypto,
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TeleportApp",
            dependencies: [
                "TeleportAPI", "TeleportAccess", "TeleportCrypto", "TeleportAuthClient", "TeleportSSH", "TeleportEvents", "TeleportTunnel",
                logging, nioCore, nioPosix, nioSSL, x509,
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Layer 4: the Kubernetes service (kubectl through the proxy, impersonation, recorded exec).
        .target(
            name: "TeleportKube",
            dependencies: [
                "TeleportAPI", "TeleportAccess", "TeleportCrypto", "TeleportAuthClient", "TeleportSSH", "TeleportEvents", "TeleportWire",
                "TeleportTunnel", "TeleportRecording", logging, nioCore, nioPosix, nioSSL, x509, yams,
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Layer 5: the daemon's wiring, the admin and user client libraries.
        .target(
            name: "TeleportDaemon",
            dependencies: [
                "TeleportAPI", "TeleportCrypto", "TeleportBackend", "TeleportBackendSQLite", "TeleportBackendEtcd", "TeleportBackendPostgres",
                "TeleportServices", "TeleportEvents", "TeleportAuthServer", "TeleportProxy", "TeleportNode", "TeleportAuthClient", "TeleportSSH", "TeleportTunnel",
                "TeleportDatabase", "TeleportRecording", "TeleportHTTPListener", "TeleportApp", "TeleportKube", "CTeleportShims", yams, logging, nioCore, nioPosix, x509,
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TeleportAdmin",
            dependencies: ["TeleportAPI", "TeleportAccess", "TeleportCrypto", "TeleportAuthClient", "TeleportClient", yams, logging],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TeleportClient",
            dependencies: [
                "TeleportAPI", "TeleportCrypto", "TeleportAuthClient", "TeleportHTTP", "TeleportSSH", "TeleportSSHClient", "TeleportEvents", "TeleportWire", "CTeleportShims", logging, nioCore, nioPosix, nioSSL, crypto, x509, yams,
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Layer 6: thin executables.
        .executableTarget(
            name: "teleport",
            dependencies: ["TeleportDaemon", "TeleportAPI", argumentParser],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "tctl",
            dependencies: ["TeleportAdmin", "TeleportAPI", argumentParser],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "tsh",
            dependencies: ["TeleportClient", "TeleportAPI", argumentParser],
            swiftSettings: swiftSettings
        ),
        // A benchmark tool (bench/tunnels.py): N real reverse-tunnel agents against one proxy.
        .executableTarget(
            name: "tunnel-agents",
            dependencies: ["TeleportTunnel", "TeleportAuthClient", "TeleportAPI", "TeleportCrypto", nioCore, logging, argumentParser],
            swiftSettings: swiftSettings
        ),
        // Tests. TeleportTestSupport holds process, port and cluster helpers shared by test targets.
        .target(
            name: "TeleportTestSupport", dependencies: ["CTeleportShims"], path: "Tests/TeleportTestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "TeleportWireTests", dependencies: ["TeleportWire"], swiftSettings: swiftSettings),
        .testTarget(
            name: "TeleportDatabaseTests",
            dependencies: [
                "TeleportDatabase", "TeleportWire", "TeleportAPI", nioCore, .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TeleportKubeTests",
            dependencies: ["TeleportKube", "TeleportWire", "TeleportAPI", "TeleportAccess"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TeleportAppTests",
            dependencies: [
                "TeleportApp", "TeleportAPI", "TeleportCrypto", crypto, nioCore, .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TeleportProxyTests",
            dependencies: [
                "TeleportProxy", "TeleportWire", "TeleportAPI", "TeleportCrypto", nioCore, nioPosix, nioSSL, logging,
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(name: "TeleportAPITests", dependencies: ["TeleportAPI", "TeleportTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "TeleportAuthServerTests",
            dependencies: [
                "TeleportAuthServer", "TeleportAPI", "TeleportBackend", "TeleportEvents", "TeleportCrypto", "TeleportServices", "TeleportTestSupport", logging, crypto,
                x509, asn1,
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(name: "TeleportAccessTests", dependencies: ["TeleportAccess", "TeleportAPI"], swiftSettings: swiftSettings),
        .testTarget(
            name: "TeleportCryptoTests",
            dependencies: ["TeleportCrypto", "TeleportAPI", "TeleportTestSupport", crypto, x509],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TeleportBackendTests",
            dependencies: [
                "TeleportBackend", "TeleportBackendSQLite", "TeleportBackendEtcd", "TeleportBackendPostgres", "TeleportAPI", "TeleportEvents",
                "TeleportServices", "TeleportTestSupport", logging,
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TeleportClientTests",
            dependencies: [
                "TeleportClient", "TeleportAdmin", "TeleportAPI", "TeleportAuthClient", "TeleportCrypto", "TeleportTestSupport", crypto, x509,
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"), nioSSL,
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TeleportNodeTests",
            dependencies: [
                "TeleportNode", "TeleportRecording", "TeleportAPI", "TeleportSSH", "TeleportEvents", "TeleportCrypto", crypto, logging, nioCore, nioPosix,
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TeleportEventsTests",
            dependencies: ["TeleportEvents", "TeleportAPI", "TeleportTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TeleportDaemonTests",
            dependencies: ["TeleportDaemon", "TeleportAPI", "TeleportEvents", "TeleportTestSupport"],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TeleportSSHTests",
            dependencies: [
                "TeleportSSH", nioCore, .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOSSH", package: "swift-nio-ssh"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TeleportTunnelTests",
            dependencies: [
                "TeleportTunnel", "TeleportAPI", "TeleportCrypto", "TeleportSSH", nioCore, nioPosix, nioSSL, crypto, x509, logging,
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TeleportIntegrationTests",
            dependencies: [
                "TeleportAPI", "TeleportCrypto", "TeleportTestSupport", "CTeleportShims", "TeleportBackend", "TeleportBackendSQLite", crypto, logging,
            ],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
    ]
)
