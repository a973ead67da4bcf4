import Foundation

@testable import CompassHosts
@testable import CompassPlatform
@testable import CompassTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A built executable started as a FastCGI process manager starts it (a listening Unix socket as
/// its standard input), and a FastCGI client that talks to it the way a web server does.
final class FastCGIProcess: @unchecked Sendable {
    let pid: pid_t
    let socketPath: String
    private var connection: Int32 = -1
    private var nextId: UInt16 = 1

    init(_ name: String, environment: [String: String], folder: String) throws {
        socketPath = folder + "/fcgi-\(UUID().uuidString.prefix(8)).sock"
        guard let listener = Self.listen(at: socketPath, backlog: 16) else { throw POSIXError(.EADDRINUSE) }
        var env = environment
        env["SWIFT_BACKTRACE"] = "enable=no"
        defer { close(listener) }
        let child = try Spawn.process(
            [Executables.url(name).path], standardInput: listener, environment: env,
            stderr: folder + "/fcgi-stderr.log")
        pid = child
    }

    deinit {
        if connection >= 0 { close(connection) }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        unlink(socketPath)
    }

    /// A Unix socket listening at `path`, as a process manager hands one to its programs; nil
    /// when it cannot be bound.
    static func listen(at path: String, backlog: Int32) -> Int32? {
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = address(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, Glibc.listen(listener, backlog) == 0 else {
            close(listener)
            return nil
        }
        return listener
    }

    static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.prefix(buffer.count - 1).enumerated() { buffer[index] = byte }
        }
        return address
    }

    /// A connection to the process (kept between requests that ask for it).
    func connect() throws -> Int32 {
        if connection >= 0 { return connection }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.address(socketPath)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        connection = fd
        return fd
    }

    /// Waits, at most `seconds`, until the process has read everything sent on the connection
    /// (SIOCOUTQ, alias TIOCOUTQ: the bytes of a Unix socket its peer has not read yet).
    func waitUntilRead(seconds: Double = 20) {
        let deadline = Date().addingTimeInterval(seconds)
        var unread: Int32 = 0
        while ioctl(connection, UInt(TIOCOUTQ), &unread) == 0, unread > 0, Date() < deadline { usleep(5_000) }
    }

    func disconnect() {
        if connection >= 0 { close(connection) }
        connection = -1
    }

    func send(_ bytes: [UInt8]) throws {
        let fd = try connect()
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                guard written > 0 else { throw POSIXError(.EPIPE) }
                offset += written
            }
        }
    }

    /// Records until END_REQUEST of `requestId`.
    func readAnswer(_ requestId: UInt16) throws -> (stdout: [UInt8], records: [FastCGI.Record]) {
        let fd = try connect()
        var reader = FastCGI.RecordReader()
        var stdout: [UInt8] = []
        var records: [FastCGI.Record] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            while let record = try reader.next() {
                records.append(record)
                if record.type == FastCGI.RecordType.stdout.rawValue { stdout += record.content }
                if record.type == FastCGI.RecordType.endRequest.rawValue && record.requestId == requestId { return (stdout, records) }
            }
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            guard count > 0 else { throw POSIXError(.ECONNRESET) }
            reader.append(buffer[0..<count])
        }
    }

    /// One request as a web server sends it: BEGIN_REQUEST (keeping the connection), PARAMS,
    /// STDIN; the CGI response it answers.
    func request(_ params: [String: String], body: [UInt8] = [], keep: Bool = true) throws -> CGIWorld.Response {
        let id = nextId
        nextId = nextId == UInt16.max ? 1 : nextId + 1
        var bytes = FastCGI.encode(.beginRequest, requestId: id, [0, 1, keep ? 1 : 0, 0, 0, 0, 0, 0])
        var all = params
        if !body.isEmpty && all["CONTENT_LENGTH"] == nil { all["CONTENT_LENGTH"] = String(body.count) }
        bytes += FastCGI.encode(.params, requestId: id, FastCGI.encodePairs(all.sorted { $0.key < $1.key }))
        bytes += FastCGI.encode(.params, requestId: id, [])
        if !body.isEmpty { bytes += FastCGI.encode(.stdin, requestId: id, body) }
        bytes += FastCGI.encode(.stdin, requestId: id, [])
        try send(bytes)
        let answer = try readAnswer(id)
        if !keep { disconnect() }
        return CGIWorld.parse(.init(status: 0, stdout: answer.stdout, stderr: ""))
    }

    /// Resident memory of the process, from /proc.
    var residentKilobytes: Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    var isRunning: Bool { kill(pid, 0) == 0 && !hasExited }

    private var hasExited: Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == pid
    }

    /// Waits for the process to exit; its exit status, or nil after `seconds`.
    func waitForExit(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { return (status >> 8) & 0xff }
            usleep(10_000)
        }
        return nil
    }
}
