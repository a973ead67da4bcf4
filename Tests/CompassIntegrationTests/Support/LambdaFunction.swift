import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A route executable as Lambda starts it: `AWS_LAMBDA_RUNTIME_API` and the configuration.
struct LambdaFunction {
    let process: Process
    let folder: URL

    static let jwtSecret = "lambda-jwt-secret-0123456789abcdef0123"

    static func start(
        _ name: String, emulator: LambdaEmulator, store: String? = nil, environment extra: [String: String] = [:],
        removing: [String] = [], folder shared: URL? = nil, stdout: String? = nil
    ) throws -> LambdaFunction {
        // Not under /tmp (where a clone may live too): a Lambda host refuses a file store there.
        let folder = shared ?? URL(fileURLWithPath: "/var/tmp/compass-lambda-tests/\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = Executables.url(name)
        process.environment = [
            "AWS_LAMBDA_RUNTIME_API": emulator.address, "SWIFT_BACKTRACE": "enable=no",
            "META_APP_ID": World.appId, "META_APP_SECRET": World.appSecret, "META_GRAPH_URL": "http://127.0.0.1:9/graph",
            "META_DIALOG_URL": "https://www.facebook.com", "OAUTH_REDIRECT_BASE_URL": "https://compass.example",
            "COMPASS_JWT_SECRET": jwtSecret, "CREDENTIALS_KEY": Data(Crypto.randomBytes(32)).base64EncodedString(),
            "CRON_SECRET": "cron-secret-0123456789abcdef", "STORE_URL": store ?? "file://\(folder.path)/store", "LOG_LEVEL": "error",
        ].merging(extra) { _, new in new }.filter { !removing.contains($0.key) }
        if let stdout {
            _ = FileManager.default.createFile(atPath: stdout, contents: nil)
            process.standardOutput = FileHandle(forWritingAtPath: stdout)
        } else {
            process.standardOutput = FileHandle.nullDevice
        }
        process.standardError = FileHandle.nullDevice
        try process.run()
        return LambdaFunction(process: process, folder: folder)
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: folder)
    }

    static func session(_ tenant: String) -> String {
        SessionVerifier(secret: Array(jwtSecret.utf8)).mint(tenantId: tenant, expiresAt: Date().unixSeconds + 3600)
    }
}
