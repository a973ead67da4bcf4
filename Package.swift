// swift-tools-version: 6.2
import PackageDescription

// Layers, one target each; SwiftPM keeps the arrows one-way (docs/architecture.md):
//
//   route executables -> CompassHosts -> CompassHandlers -> CompassMeta    -> CompassPlatform
//                                                         -> CompassStorage -> CompassPlatform
//   development executables and tests -> CompassDev -> everything above
//   CompassUnitTests, CompassIntegrationTests -> CompassTestSupport -> everything above
//
// No package dependencies: Foundation, nettle and libcurl only (libcrypto in the unit tests).

/// The route executables: one per function in functions.json (a test checks the two agree).
let routes = ["connect", "callback", "disconnect", "settings", "send-event", "refresh-cron", "meta-webhooks", "metrics"]
/// Development only: mounted by scripts/serve when no Meta app is configured.
let devFunctions = ["graph-sandbox", "dev-console"]
/// A warning is a bug report from the compiler: every Swift target builds with none. Release
/// builds call the metadata accessors of generic types such as `[String: String]` directly,
/// with the witness tables the compiler already knows, instead of decoding the type's mangled
/// name at run time: that decoding checks each generic requirement by scanning every protocol
/// conformance in the executable, about 0.9 million instructions of each process's start
/// (BENCHMARKS.md).
let strict: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
    .unsafeFlags(["-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors"], .when(configuration: .release)),
]
/// Release executables link libstdc++ (which the Swift runtime uses) statically: its shared
/// library's 3,261 symbol relocations cost every process's start (BENCHMARKS.md). The toolchain
/// asks for `-lstdc++` itself; scripts/lib/link, searched first, answers it with a linker script
/// naming the archive. glibc's arc4random, which the archive refers to, is newer than Amazon
/// Linux 2023's glibc: GlibcCompat defines it. They export no symbols of their own
/// (`--no-export-dynamic`, after the toolchain's `-export-dynamic`): nothing loads against them,
/// and the Swift runtime's `dladdr` of itself at start searched all 5,200 of them, 188,000
/// instructions of every process (BENCHMARKS.md).
let releaseLinking: [LinkerSetting] = [
    .unsafeFlags(["-L", Context.packageDirectory + "/scripts/lib/link", "-Xlinker", "--no-export-dynamic"], .when(configuration: .release))
]

/// nettle, the product's cryptography (Crypto): linked from its archive in release builds, so that
/// the executables need no libnettle at run time (scripts/package-lambda allows only the shared
/// libraries Amazon Linux 2023 has) and take only the objects they use; from the shared library
/// in debug builds.
let nettle: [LinkerSetting] = [
    .linkedLibrary(":libnettle.a", .when(platforms: [.linux], configuration: .release)),
    .linkedLibrary("nettle", .when(platforms: [.linux], configuration: .debug)),
]

let package = Package(
    name: "compass-meta-connector",
    platforms: [.macOS(.v14)],
    products: (routes + devFunctions).map { .executable(name: $0, targets: [$0]) } + [
        .executable(name: "compass-dev", targets: ["compass-dev"])
    ],
    targets: [
        // libcrypto linked, for the tests' comparisons only.
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // Headers only; linked as `nettle` says below.
        .systemLibrary(
            name: "CNettle",
            providers: [.apt(["nettle-dev"])]
        ),
        // Headers only: libcurl is loaded with dlopen the first time a request is made,
        // so a handler that never calls out never pays for loading it.
        .systemLibrary(
            name: "CCurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .target(
            name: "CurlBridge",
            dependencies: ["CCurl"],
            linkerSettings: [.linkedLibrary("dl")]
        ),
        /// hypotf under a name older glibc versions have (GlibcCompat/hypotf.c): the release
        /// executables need no glibc newer than 2.34, so they start on Amazon Linux 2023.
        .target(name: "GlibcCompat"),
        /// The JSON string scan, string escaping and hex digits sixteen bytes at a time (SSE2),
        /// inline C: Swift has no way to turn a vector comparison into a mask of its bytes.
        .target(name: "ByteScan"),
        // libpq, loaded with dlopen by the PostgreSQL store on first use: no other store maps it.
        .target(name: "PQBridge", linkerSettings: [.linkedLibrary("dl")]),
        /// Request and response, Config, Logger, Crypto, HTTP client, JSON: knows no other layer.
        .target(
            name: "CompassPlatform", dependencies: ["ByteScan", "CNettle", "CurlBridge", "GlibcCompat"], swiftSettings: strict,
            linkerSettings: nettle),
        /// The key-value protocol and its backends: knows nothing of Meta or of routes.
        .target(name: "CompassStorage", dependencies: ["CompassPlatform", "PQBridge", "GlibcCompat"], swiftSettings: strict),
        /// Graph client, Conversions API events, normalization and hashing.
        .target(name: "CompassMeta", dependencies: ["CompassPlatform"], swiftSettings: strict),
        /// Records, the integration's lifecycle, event delivery and one handler per route.
        .target(name: "CompassHandlers", dependencies: ["CompassPlatform", "CompassStorage", "CompassMeta"], swiftSettings: strict),
        /// Host adapters: the process (environment, stdin, stdout) in, a handler called, the answer out.
        .target(
            name: "CompassHosts", dependencies: ["CompassPlatform", "CompassStorage", "CompassHandlers", "GlibcCompat"],
            swiftSettings: strict),
        /// Development only: Graph sandbox, dev console, host config generation. No route links it.
        .target(
            name: "CompassDev", dependencies: ["CompassPlatform", "CompassStorage", "CompassMeta", "CompassHandlers", "CompassHosts"],
            swiftSettings: strict),
        .executableTarget(name: "compass-dev", dependencies: ["CompassDev", "CompassPlatform"], swiftSettings: strict),
        /// What both test targets share: the in-process world (a store, a sandboxed Meta, a
        /// clock), its flows, and the small doubles.
        .target(
            name: "CompassTestSupport",
            dependencies: ["CompassPlatform", "CompassStorage", "CompassMeta", "CompassHandlers", "CompassHosts", "CompassDev"],
            path: "Tests/CompassTestSupport",
            swiftSettings: strict
        ),
        /// Tests that need no server and no built executable: handlers, events, the platform, in-process.
        .testTarget(
            name: "CompassUnitTests",
            dependencies: [
                "CCrypto", "CompassPlatform", "CompassStorage", "CompassMeta", "CompassHandlers", "CompassHosts", "CompassDev",
                "CompassTestSupport",
            ],
            swiftSettings: strict
        ),
        /// Tests that start real hosts, stores and processes: lighttpd, nginx, Apache, etcd,
        /// PostgreSQL, the built executables, FastCGI and Lambda runtimes, Chromium.
        .testTarget(
            name: "CompassIntegrationTests",
            dependencies: [
                "CompassPlatform", "CompassStorage", "CompassMeta", "CompassHandlers", "CompassHosts", "CompassDev", "CompassTestSupport",
            ],
            swiftSettings: strict
        ),
    ]
        + routes.map {
            .executableTarget(
                name: $0, dependencies: ["CompassHandlers", "CompassHosts"], swiftSettings: strict, linkerSettings: releaseLinking)
        }
        + devFunctions.map {
            .executableTarget(
                name: $0, dependencies: ["CompassDev", "CompassHosts"], swiftSettings: strict, linkerSettings: releaseLinking)
        }
)
