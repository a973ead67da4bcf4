import Foundation

@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// moto's server mode (PyPI `moto[server]`, installed once into a venv under .build), a
/// DynamoDB-compatible server on a loopback port for the tests: an emulator, not AWS, answering
/// one request at a time.
final class MotoServer: @unchecked Sendable {
    static let version = "5.2.1"
    static let venv = FunctionsManifestTests.root.appendingPathComponent(".build/python/moto-\(version)")

    let port: Int
    let folder = TemporaryFolder()
    private let pid: pid_t

    var endpoint: String { "http://127.0.0.1:\(port)" }

    init() throws {
        // One request at a time (scripts/lib/moto_serial.py): moto's threaded server does not
        // make a conditional write atomic, which DynamoDB does.
        let python = try Self.ensureVenv().appendingPathComponent("bin/python").path
        let serial = FunctionsManifestTests.root.appendingPathComponent("scripts/lib/moto_serial.py").path
        // The free port found may be taken by another server of the run before moto binds it
        // (moto then exits), and a loaded machine makes moto slow to start: a new port when it
        // exits, a minute's wait when it does not.
        for attempt in 1...3 {
            let port = try LighttpdHost.freePort()
            let pid = try Spawn.process(
                [python, serial, "127.0.0.1", String(port)], environment: ["PATH": "/usr/bin:/bin"], stderr: folder.path + "/moto.log")
            if Self.started(pid, port: port, within: 60) {
                (self.port, self.pid) = (port, pid)
                return
            }
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            if attempt == 3 { break }
        }
        let log = (try? String(contentsOfFile: folder.path + "/moto.log", encoding: .utf8)) ?? ""
        throw MotoFailure(log: String(log.suffix(2000)))
    }

    struct MotoFailure: Error, CustomStringConvertible {
        let log: String
        var description: String { "moto did not start; its log ends: \(log)" }
    }

    /// Whether moto answers on `port` (its own `/moto-api/data.json`, not another server that
    /// took the port) before `seconds` passed, while it runs.
    private static func started(_ pid: pid_t, port: Int, within seconds: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        let probe = HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)/moto-api/data.json")
        while true {
            var status: Int32 = 0
            guard Date() < deadline, waitpid(pid, &status, WNOHANG) == 0 else { return false }
            if LighttpdHost.accepts(port) {
                // Running, and the answer is moto's: the port is its own.
                if (try? CurlTransport().send(probe))?.status == 200, waitpid(pid, &status, WNOHANG) == 0 { return true }
            }
            usleep(100_000)
        }
    }

    deinit { stop() }

    private func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    /// One server for the whole test run, for suites that only need a store; stopped at exit.
    static let shared: MotoServer? = {
        let server: MotoServer?
        do {
            server = try MotoServer()
        } catch {
            // Said once, where the run's output shows it: every test on moto then records that
            // it could not be started.
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            server = nil
        }
        atexit { MotoServer.shared?.stop() }
        return server
    }()

    /// The credentials the tests sign with (moto takes any).
    static let environment = ["AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "test-secret"]

    /// `STORE_URL` for a table of this server.
    func storeURL(table: String) -> String { "dynamodb://\(table)?region=eu-west-1&endpoint=\(endpoint)" }

    /// A new table on this server and the store on it; expiry follows `clock`.
    func store(clock: any Clock = SystemClock()) throws -> (url: String, store: DynamoDBStore) {
        let table = "compass-" + UUID().uuidString.prefix(8).lowercased()
        let transport = CurlTransport()
        let client = DynamoDBClient(
            endpoint: endpoint, region: "eu-west-1",
            credentials: AWSCredentialsProvider(environment: Self.environment, transport: transport, clock: SystemClock()),
            transport: transport, clock: SystemClock())
        let store = DynamoDBStore(table: table, client: client, clock: clock)
        _ = try store.createTableIfMissing()
        return (storeURL(table: table), store)
    }

    static func ensureVenv() throws -> URL {
        try PythonVenv.ensure(venv, installing: ["moto[server]==\(version)"])
    }
}
