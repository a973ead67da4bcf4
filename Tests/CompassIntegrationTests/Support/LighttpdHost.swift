import Foundation

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

/// A real lighttpd on a free loopback port, configured from functions.json exactly as
/// `scripts/serve` configures it, serving the built executables with a fresh store and the
/// Graph sandbox mounted at /graph.
final class LighttpdHost: WebHost, @unchecked Sendable {
    let folder = TemporaryFolder()
    let port: Int
    private var pid: pid_t = 0
    let environment: [String: String]
    let errorLog: URL

    var base: String { "http://127.0.0.1:\(port)" }

    enum Failure: Error {
        case notInstalled
        case didNotStart(String)
        case portTaken
    }

    static var binary: String? {
        ["/usr/sbin/lighttpd", "/usr/bin/lighttpd", "/usr/local/sbin/lighttpd"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Starts on a free port; should another process take the port between the choice and
    /// lighttpd's bind, lighttpd says so in its log and exits, and another port is tried.
    convenience init(extra: [String: String] = [:], fastCGI: Bool = false) throws {
        var attempt = 0
        while true {
            attempt += 1
            do {
                try self.init(port: try Self.freePort(), extra: extra, fastCGI: fastCGI)
                return
            } catch Failure.portTaken where attempt < 5 {
                continue
            }
        }
    }

    private init(port: Int, extra: [String: String], fastCGI: Bool) throws {
        guard let lighttpd = Self.binary else { throw Failure.notInstalled }
        self.port = port
        let base = "http://127.0.0.1:\(port)"
        var env = [
            "META_APP_ID": World.appId, "META_APP_SECRET": World.appSecret, "META_GRAPH_URL": base + "/graph",
            "META_DIALOG_URL": base + "/graph", "OAUTH_REDIRECT_BASE_URL": base, "COMPASS_JWT_SECRET": World.jwtSecret,
            "CREDENTIALS_KEY": Data(Crypto.randomBytes(32)).base64EncodedString(), "CRON_SECRET": "cron-secret-for-tests-0123456789",
            "STORE_URL": "file://\(folder.path)/store", "SANDBOX_STATE_DIR": folder.path + "/sandbox",
            "SANDBOX_BASE_URL": base + "/graph", "COMPASS_DEV_CONSOLE": "1", "LOG_LEVEL": "debug",
            "REFRESH_WINDOW_DAYS": "7",
        ]
        env.merge(extra) { _, new in new }
        environment = env
        for sub in ["www", "tmp", "fastcgi"] {
            try FileManager.default.createDirectory(atPath: folder.path + "/" + sub, withIntermediateDirectories: true)
        }
        let manifest = try FunctionsManifest.load(path: FunctionsManifestTests.root.appendingPathComponent("functions.json").path)
        let config = HostSetup(
            manifest: manifest, binDirectory: Executables.directory.path, dataDirectory: folder.path,
            port: port, environment: env, fastCGI: fastCGI, sandbox: true
        ).lighttpdConfig()
        let configPath = folder.path + "/lighttpd.conf"
        try config.write(toFile: configPath, atomically: false, encoding: .utf8)
        errorLog = URL(fileURLWithPath: folder.path + "/lighttpd.log")
        _ = FileManager.default.createFile(atPath: errorLog.path, contents: nil)
        pid = try Self.spawn([lighttpd, "-D", "-f", configPath], stderr: errorLog.path)
        // lighttpd logs "server started" once it listens; a port taken meanwhile makes it exit.
        let deadline = Date().addingTimeInterval(10)
        while !log.contains("server started") {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                pid = 0
                throw log.contains("Address already in use") ? Failure.portTaken : Failure.didNotStart(log)
            }
            guard Date() < deadline else { throw Failure.didNotStart(log) }
            usleep(20_000)
        }
    }

    deinit {
        guard pid > 0 else { return }
        Spawn.stop(pid, graceMilliseconds: 5_000)
    }

    static func spawn(_ argv: [String], stderr: String) throws -> pid_t {
        try Spawn.process(argv, stderr: stderr)
    }

    var log: String { (try? String(contentsOf: errorLog, encoding: .utf8)) ?? "" }

    /// Logs in through the development console; returns the Cookie header value.
    func login(_ tenant: String) throws -> String {
        let response = try send(
            "POST", "/dev/login", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "tenant=\(tenant)")
        guard let cookie = response.headers["set-cookie"]?.split(separator: ";").first else { return "" }
        return String(cookie)
    }

    /// A loopback port nothing listens on, chosen below the kernel's ephemeral range
    /// (`ip_local_port_range`, 32768 and up), so that no outgoing connection of this machine
    /// takes it as its own port meanwhile. A server started on it must still handle a port taken
    /// by another test in between (the callers retry).
    static func freePort() throws -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 20_000..<32_000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            if bound { return port }
        }
        throw Failure.didNotStart("no free port between 20000 and 32000")
    }

    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// A web server under test, serving the functions at `base`.
protocol WebHost {
    var base: String { get }
}

extension WebHost {
    /// One HTTP exchange with the host (no redirects followed). A body is JSON unless a
    /// `Content-Type` says otherwise.
    func send(_ method: String, _ path: String, headers: [(String, String)] = [], body: String? = nil) throws -> HTTPResponse {
        var all = headers
        if body != nil && !all.contains(where: { $0.0.lowercased() == "content-type" }) { all.append(("Content-Type", "application/json")) }
        return try CurlTransport().send(
            HTTPRequest(
                method: method, url: path.hasPrefix("http") ? path : base + path,
                headers: all, body: body.map { Array($0.utf8) }, timeoutMilliseconds: 20_000))
    }
}
