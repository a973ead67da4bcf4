import Foundation

@testable import CompassTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// moto's server mode (PyPI `moto[server]`, installed once into a venv under .build), a
/// DynamoDB-compatible server on a loopback port for the tests: an emulator, not AWS.
final class MotoServer: @unchecked Sendable {
    static let version = "5.2.1"
    static let venv = FunctionsManifestTests.root.appendingPathComponent(".build/python/moto-\(version)")

    let port: Int
    let folder = TemporaryFolder()
    private let pid: pid_t

    var endpoint: String { "http://127.0.0.1:\(port)" }

    init() throws {
        let server = try Self.ensureVenv().appendingPathComponent("bin/moto_server").path
        port = try LighttpdHost.freePort()
        pid = try Spawn.process(
            [server, "-H", "127.0.0.1", "-p", String(port)], environment: ["PATH": "/usr/bin:/bin"], stderr: folder.path + "/moto.log")
        let deadline = Date().addingTimeInterval(30)
        while !LighttpdHost.accepts(port) {
            guard Date() < deadline else {
                kill(pid, SIGKILL)
                throw POSIXError(.ETIMEDOUT)
            }
            usleep(100_000)
        }
    }

    deinit {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    static func ensureVenv() throws -> URL {
        let marker = venv.appendingPathComponent(".installed")
        if FileManager.default.fileExists(atPath: marker.path) { return venv }
        try SDKParityTests.run("/usr/bin/env", ["python3", "-m", "venv", venv.path])
        try SDKParityTests.run(venv.appendingPathComponent("bin/pip").path, ["install", "--quiet", "moto[server]==\(version)"])
        try Data().write(to: marker)
        return venv
    }
}
