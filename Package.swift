// swift-tools-version: 6.0
import PackageDescription

// One library (`Compass`, layered in folders) and one small executable per route.
// No package dependencies: Foundation, libcrypto and libcurl only.
let routes = ["connect", "callback", "disconnect", "settings", "send-event", "refresh-cron", "meta-webhooks"]
/// Development only: mounted by scripts/serve when no Meta app is configured.
let devFunctions = ["graph-sandbox", "dev-console"]

let package = Package(
    name: "compass-meta-connector",
    platforms: [.macOS(.v14)],
    products: (routes + devFunctions).map { .executable(name: $0, targets: [$0]) } + [
        .executable(name: "compass-dev", targets: ["compass-dev"]),
    ],
    targets: [
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
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
        .target(
            name: "Compass",
            dependencies: ["CCrypto", "CurlBridge"]
        ),
        .executableTarget(name: "compass-dev", dependencies: ["Compass"]),
        .testTarget(
            name: "CompassTests",
            dependencies: ["Compass"],
            resources: []
        ),
    ] + (routes + devFunctions).map { .executableTarget(name: $0, dependencies: ["Compass"]) }
)
