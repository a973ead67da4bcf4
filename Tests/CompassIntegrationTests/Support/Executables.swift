import Foundation

@testable import CompassTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The built executables, run as a CGI host runs them.
enum Executables {
    /// `COMPASS_BIN_DIR`, else the debug build folder of this package.
    static let directory: URL = {
        if let dir = ProcessInfo.processInfo.environment["COMPASS_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug")
    }()

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    static func start(_ name: String, arguments: [String] = [], environment: [String: String] = ["SWIFT_BACKTRACE": "enable=no"]) throws
        -> Process
    {
        let process = Process()
        process.executableURL = url(name)
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return process
    }

    struct Result {
        var status: Int32
        var stdout: [UInt8]
        var stderr: String
        var text: String { String(decoding: stdout, as: UTF8.self) }
    }

    /// A handler may answer (413, 405) without reading its body: writing the rest must give
    /// EPIPE, not kill the test process.
    static let ignoreBrokenPipes: Void = {
        signal(SIGPIPE, SIG_IGN)
        return ()
    }()

    /// Runs `name` with exactly `environment` (no PATH, no HOME) and `body` on stdin.
    static func runCGI(
        _ name: String, environment: [String: String], arguments: [String] = [], body: [UInt8] = [],
        closeInput: Bool = true
    ) throws -> Result {
        let process = Process()
        process.executableURL = url(name)
        process.arguments = arguments
        var env = environment
        env["SWIFT_BACKTRACE"] = "enable=no"
        process.environment = env
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        _ = ignoreBrokenPipes
        try process.run()
        if !body.isEmpty { try? input.fileHandleForWriting.write(contentsOf: Data(body)) }
        if closeInput { try input.fileHandleForWriting.close() }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        if !closeInput { try? input.fileHandleForWriting.close() }
        return Result(status: process.terminationStatus, stdout: Array(out), stderr: String(decoding: err, as: UTF8.self))
    }
}
