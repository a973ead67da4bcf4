import Foundation
import Synchronization

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassPlatform
@testable import CompassTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A real nginx or Apache on a free loopback port, configured by `HostSetup.nginxConfig()` or `apacheConfig()`
/// from functions.json, with the built executables behind it: as CGI (nginx through fcgiwrap,
/// Apache with mod_cgid, programs running as www-data) or kept warm as FastCGI processes on a
/// socket per function. Meta is the Graph sandbox on its own loopback port.
final class NginxHost: WebHost, @unchecked Sendable {
    enum Server { case nginx, apache }
    let folder = TemporaryFolder()
    private(set) var port = 0
    let sandbox: GraphSandbox
    let server: LoopbackServer
    private(set) var environment: [String: String] = [:]
    private var pids: [pid_t] = []
    private var listeners: [Int32] = []

    var base: String { "http://127.0.0.1:\(port)" }

    static var available: Bool {
        ["/usr/sbin/nginx", "/usr/sbin/fcgiwrap"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }
    static var apacheAvailable: Bool { FileManager.default.isExecutableFile(atPath: "/usr/sbin/apache2") }

    enum Failure: Error {
        case didNotStart(String)
        case portTaken
    }

    init(fastCGI: Bool, server kind: Server = .nginx) throws {
        (sandbox, server) = try GraphSandbox.serve(folder: folder.path + "/sandbox")
        for sub in ["tmp", "fastcgi", "store"] {
            try FileManager.default.createDirectory(atPath: folder.path + "/" + sub, withIntermediateDirectories: true)
        }
        if kind == .apache {
            // Apache runs CGI programs as www-data: the store must be theirs.
            chmod(folder.path, 0o755)
            var user = passwd()
            var found: UnsafeMutablePointer<passwd>? = nil
            var scratch = [CChar](repeating: 0, count: 4096)
            getpwnam_r("www-data", &user, &scratch, scratch.count, &found)
            if found != nil { chown(folder.path + "/store", user.pw_uid, user.pw_gid) }
        }
        var chosen = 0
        var env: [String: String] = [:]
        for attempt in 1...5 {
            let port = try LighttpdHost.freePort()
            env = [
                "META_APP_ID": World.appId, "META_APP_SECRET": World.appSecret, "META_GRAPH_URL": server.baseURL,
                "META_DIALOG_URL": server.baseURL, "OAUTH_REDIRECT_BASE_URL": "http://127.0.0.1:\(port)",
                "COMPASS_JWT_SECRET": World.jwtSecret, "CREDENTIALS_KEY": Data(Crypto.randomBytes(32)).base64EncodedString(),
                "CRON_SECRET": "cron-secret-for-tests-0123456789", "STORE_URL": "file://\(folder.path)/store", "LOG_LEVEL": "debug",
            ]
            do {
                try start(port: port, environment: env, fastCGI: fastCGI, kind: kind)
                chosen = port
                break
            } catch Failure.portTaken where attempt < 5 {
                stopAll()
            }
        }
        port = chosen
        environment = env
    }

    /// What the server and the programs logged.
    var log: String {
        ["/nginx-error.log", "/nginx-stderr.log", "/apache-error.log", "/fcgiwrap.log"]
            .map { (try? String(contentsOfFile: folder.path + $0, encoding: .utf8)) ?? "" }.joined(separator: "\n")
    }

    deinit {
        stopAll()
        server.stop()
    }

    private func stopAll() {
        for pid in pids {
            // A group of its own (fcgiwrap and its workers): the whole group goes.
            Spawn.stop(pid, group: getpgid(pid) == pid)
        }
        pids = []
        for listener in listeners { close(listener) }
        listeners = []
    }

    private func start(port: Int, environment: [String: String], fastCGI: Bool, kind: Server) throws {
        let manifest = try FunctionsManifest.load(path: FunctionsManifestTests.root.appendingPathComponent("functions.json").path)
        let config = HostSetup(
            manifest: manifest, binDirectory: Executables.directory.path, dataDirectory: folder.path,
            port: port, environment: environment, fastCGI: fastCGI)
        let path = folder.path + (kind == .nginx ? "/nginx.conf" : "/apache.conf")
        try (kind == .nginx ? config.nginxConfig() : config.apacheConfig()).write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o600)
        if fastCGI {
            // Each function's processes on its socket, each with only its own variables.
            for function in manifest.functions where function.planned != true {
                let socketPath = config.socket(for: function)
                unlink(socketPath)
                guard let listener = FastCGIProcess.listen(at: socketPath, backlog: 64) else {
                    throw Failure.didNotStart("cannot listen on \(socketPath)")
                }
                // Reachable by the web server's group only (Apache's workers run as www-data).
                chmod(socketPath, 0o660)
                if kind == .apache, let group = getgrnam("www-data") { chown(socketPath, 0, group.pointee.gr_gid) }
                listeners.append(listener)
                var variables = function.environment.reduce(into: ["SWIFT_BACKTRACE": "enable=no"]) { result, name in
                    if let value = environment[name] { result[name] = value }
                }
                variables["PATH"] = "/usr/bin:/bin"
                // A request not whole in 5 s (or an answer not read) is given up.
                variables["FASTCGI_REQUEST_SECONDS"] = "5"
                for _ in 0..<2 {
                    pids.append(
                        try Spawn.process(
                            [Executables.url(function.executable).path], standardInput: listener,
                            environment: variables, stderr: folder.path + "/\(function.executable).log"))
                }
            }
        } else if kind == .nginx {
            pids.append(
                try Spawn.process(
                    ["/usr/sbin/fcgiwrap", "-c", "4", "-s", "unix:" + config.fcgiwrapSocket], standardInput: nil,
                    environment: ["PATH": "/usr/bin:/bin"], stderr: folder.path + "/fcgiwrap.log", ownGroup: true))
        }
        let command =
            kind == .nginx
            ? ["/usr/sbin/nginx", "-c", path, "-g", "daemon off; master_process on; user root;"]
            : ["/usr/sbin/apache2", "-f", path, "-DFOREGROUND"]
        let nginx = try Spawn.process(
            command, standardInput: nil,
            environment: ["PATH": "/usr/bin:/bin"], stderr: folder.path + "/nginx-stderr.log")
        pids.append(nginx)
        let deadline = Date().addingTimeInterval(10)
        while true {
            var status: Int32 = 0
            if waitpid(nginx, &status, WNOHANG) == nginx {
                pids.removeLast()
                throw log.contains("Address already in use") ? Failure.portTaken : Failure.didNotStart(log)
            }
            let ready =
                LighttpdHost.accepts(port) && (fastCGI || kind == .apache || FileManager.default.fileExists(atPath: config.fcgiwrapSocket))
            if ready { return }
            guard Date() < deadline else { throw Failure.didNotStart("nginx did not start") }
            usleep(20_000)
        }
    }
}
