import Foundation

@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway PostgreSQL server (Debian's postgresql): `initdb` and `pg_ctl` under a folder of
/// its own, on a free loopback port, trusting local connections. PostgreSQL refuses to run as
/// root, so under root it runs as the `postgres` user the package creates.
final class PostgresServer: @unchecked Sendable {
    let folder: String
    let port: Int

    enum Failure: Error {
        case notInstalled
        case didNotStart(String)
    }

    static var binaries: String? {
        (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?.sorted().last
            .map { "/usr/lib/postgresql/\($0)/bin" }.flatMap { FileManager.default.isExecutableFile(atPath: $0 + "/pg_ctl") ? $0 : nil }
    }

    /// Set when the server takes TLS connections only: its CA's certificate (and beside it
    /// `other-ca.pem`, a CA that signed nothing of the server's).
    private(set) var caFile: String?

    /// `tls`: connections over TCP must use TLS, with a certificate for `localhost` (only) signed
    /// by a CA of the test's own (`caFile`).
    init(tls: Bool = false) throws {
        guard let bin = Self.binaries else { throw Failure.notInstalled }
        folder = "/var/tmp/compass-pg-\(UUID().uuidString.prefix(8))"
        port = try LighttpdHost.freePort()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if getuid() == 0 { _ = try Self.run(["/bin/chown", "postgres:postgres", folder], log: "/dev/null") }
        _ = try run([bin + "/initdb", "-D", folder + "/data", "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        if tls { try makeCertificates() }
        try start()
    }

    /// A CA and a server certificate for `localhost` (files owned by the server's user, the key
    /// readable by it alone), and a client authentication file that refuses TCP without TLS.
    private func makeCertificates() throws {
        let tls = folder + "/tls"
        let openssl = "/usr/bin/openssl"
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try run(["/bin/mkdir", tls])
        try run(
            [openssl, "req", "-x509"] + curve + [
                "-keyout", tls + "/ca.key", "-out", tls + "/ca.pem", "-days", "2", "-subj", "/CN=compass-test-ca",
            ])
        try run([openssl, "req"] + curve + ["-keyout", tls + "/server.key", "-out", tls + "/server.csr", "-subj", "/CN=localhost"])
        try run(["/bin/sh", "-c", "printf 'subjectAltName=DNS:localhost\\n' > \(tls)/san.ext"])
        try run([
            openssl, "x509", "-req", "-in", tls + "/server.csr", "-CA", tls + "/ca.pem", "-CAkey", tls + "/ca.key", "-CAcreateserial",
            "-out", tls + "/server.pem", "-days", "2", "-extfile", tls + "/san.ext",
        ])
        try run(
            [openssl, "req", "-x509"] + curve + [
                "-keyout", tls + "/other-ca.key", "-out", tls + "/other-ca.pem", "-days", "2", "-subj", "/CN=another-ca",
            ])
        try run(["/bin/chmod", "600", tls + "/server.key"])
        try run([
            "/bin/sh", "-c",
            "printf 'local all all trust\\nhostssl all all 127.0.0.1/32 trust\\nhost all all 0.0.0.0/0 reject\\n' > \(folder)/data/pg_hba.conf",
        ])
        caFile = tls + "/ca.pem"
    }

    /// Stopped, and its folder (the cluster's data) removed.
    deinit { discard() }

    func discard() {
        stop()
        try? FileManager.default.removeItem(atPath: folder)
    }

    var url: String { url(database: "postgres") }

    func url(database: String) -> String { "postgresql://postgres@127.0.0.1:\(port)/\(database)?connect_timeout=5" }

    /// A fresh database, so that other processes (with the default schema) see the same store.
    func createDatabase() throws -> String {
        let name = "t" + UUID().uuidString.prefix(12).lowercased().replacing("-", with: "")
        try run([Self.binaries! + "/psql", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-q", "-c", "CREATE DATABASE \(name)"])
        return url(database: name)
    }

    /// What psql prints (unaligned, tuples only) for `sql` in `database`.
    func psql(_ database: String, _ sql: String) throws -> String {
        let output = folder + "/answer-\(UUID().uuidString).txt"
        try run([
            Self.binaries! + "/psql", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", database, "-At", "-o", output, "-c",
            sql,
        ])
        defer { unlink(output) }
        return (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    }

    /// The database a URL of `url(database:)` names.
    static func database(of url: String) -> String { String(url.split(separator: "/").last!.split(separator: "?")[0]) }

    /// The processes of the server (the postmaster and its children), for stopping them in place.
    func processes() -> [pid_t] {
        guard let text = try? String(contentsOfFile: folder + "/data/postmaster.pid", encoding: .utf8),
            let postmaster = text.split(separator: "\n").first.flatMap({ pid_t($0) })
        else { return [] }
        let children = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }.filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && pid_t(fields[1]) == postmaster
        }
        return [postmaster] + children
    }

    func stop() {
        guard let bin = Self.binaries else { return }
        _ = try? run([bin + "/pg_ctl", "-D", folder + "/data", "-m", "immediate", "-w", "stop"])
    }

    /// Starts the server (again), on the same port and folder.
    func start() throws {
        guard let bin = Self.binaries else { throw Failure.notInstalled }
        var options = "-p \(port) -k \(folder) -h 127.0.0.1 -c fsync=off -c full_page_writes=off"
        if caFile != nil { options += " -c ssl=on -c ssl_cert_file=\(folder)/tls/server.pem -c ssl_key_file=\(folder)/tls/server.key" }
        _ = try run([bin + "/pg_ctl", "-D", folder + "/data", "-l", folder + "/server.log", "-o", options, "-w", "-t", "30", "start"])
    }

    /// A command as the server's user, to its end; `didNotStart` with its output if it failed.
    @discardableResult
    func run(_ argv: [String]) throws -> String {
        try Self.run(getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + argv : argv, log: folder + "/commands.log")
    }

    /// Through `Spawn` (no descriptor of the test process is inherited: the server `pg_ctl start`
    /// leaves running holds none of ours), its output appended to `log`.
    @discardableResult
    static func run(_ argv: [String], log: String) throws -> String {
        let before = (try? Data(contentsOf: URL(fileURLWithPath: log)).count) ?? 0
        let pid = try Spawn.process(argv, stderr: log)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = String(decoding: ((try? Data(contentsOf: URL(fileURLWithPath: log))) ?? Data()).dropFirst(before), as: UTF8.self)
        guard status == 0 else { throw Failure.didNotStart("\(argv.joined(separator: " ")): \(output.suffix(2000))") }
        return output
    }

    /// One server for the whole test run, for suites that only need a store; stopped at exit.
    static let shared: PostgresServer? = {
        let server = try? PostgresServer()
        atexit { PostgresServer.shared?.discard() }
        return server
    }()
}

/// Another session holding `compass_meta.records` locked (ACCESS EXCLUSIVE) in a transaction of
/// up to two minutes (far longer than a test under load takes to use it): from when the lock is
/// held until `release()` or the end of the value.
final class RecordsHold {
    let server: PostgresServer
    let database: String
    private let pid: pid_t
    private var released = false

    init(_ server: PostgresServer, _ database: String) throws {
        self.server = server
        self.database = database
        let log = server.folder + "/hold-\(UUID().uuidString.prefix(8)).log"
        pid = try Spawn.process(
            [
                "/usr/sbin/runuser", "-u", "postgres", "--", PostgresServer.binaries! + "/psql", "-h", "127.0.0.1",
                "-p", String(server.port), "-U", "postgres", "-d", database,
                "-c", "BEGIN; LOCK TABLE compass_meta.records IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT",
            ],
            stderr: log)
        let locks = "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'compass_meta.records'::regclass"
        // Ten seconds by the clock (each look is a psql process, slow on a loaded machine); the
        // holding psql ending first is an answer too, with its reason.
        let deadline = monotonicMilliseconds() + 10_000
        while monotonicMilliseconds() < deadline {
            if try server.psql(database, locks).hasPrefix("1") { return }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                released = true
                let reason = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw PostgresServer.Failure.didNotStart("the session to hold the records table ended: \(reason)")
            }
            usleep(50_000)
        }
        release()
        throw PostgresServer.Failure.didNotStart("the records table was not locked within 10 s")
    }

    /// Ends the holding session (its backend terminated, psql stopped). Only this database's:
    /// tests on the same server hold their own databases' tables at the same time.
    func release() {
        guard !released else { return }
        released = true
        _ = try? server.psql(
            database,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' AND datname = current_database() AND pid <> pg_backend_pid()"
        )
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    deinit { release() }
}
