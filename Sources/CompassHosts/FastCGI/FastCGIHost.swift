import CompassHandlers
import CompassPlatform
import GlibcCompat
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The FastCGI adapter: a process manager (lighttpd's `mod_fastcgi` with `bin-path`,
/// `spawn-fcgi`, Apache's `mod_fcgid`) starts the program with a listening socket as its
/// standard input; it accepts connections and serves their requests one at a time through the
/// same handler values as CGI. Configuration and services are built once for the process; each
/// request gets its own request, logger and dependencies, so nothing of one reaches the next.
/// SIGTERM lets the request in flight finish; `MAX_REQUESTS` recycles the process.
///
/// No peer holds a responder: a request must arrive whole (params and body) within
/// `FASTCGI_REQUEST_SECONDS` (10 by default) of its first record, an idle connection is closed
/// after as long, and an answer the peer does not read within that time is given up (as it is
/// when SIGTERM comes while the peer does not read).
package enum FastCGIHost {
    /// Set by SIGTERM: finish the request in flight, then exit.
    fileprivate static let terminating = Atomic<Bool>(false)
    static var isTerminating: Bool { terminating.load(ordering: .relaxed) }
    /// How long a request may take to arrive whole, a connection may stay idle, and an answer
    /// may wait for the peer to read it, unless `FASTCGI_REQUEST_SECONDS` says otherwise.
    static let defaultRequestSeconds = 10

    /// True when standard input is a listening socket (FCGI_LISTENSOCK_FILENO).
    package static var startedByProcessManager: Bool {
        var listening: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) == 0 && listening != 0
    }

    static func serve<H: Handler>(_ handler: H.Type, process: ProcessContext) -> Int32 {
        installTerminationHandler()
        let server = Server<H>(process: process)
        let seconds = process.environment["FASTCGI_REQUEST_SECONDS"].flatMap { Int($0) }.flatMap { (1...3600).contains($0) ? $0 : nil }
        server.limitMilliseconds = Int64(seconds ?? defaultRequestSeconds) * 1000
        let maxRequests = process.environment["MAX_REQUESTS"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }
        while !isTerminating {
            // Non-blocking: every read and write that would wait does so in poll(), bounded by
            // the limit. Both flags set by accept4 itself (three fcntl calls a request before).
            let connection = compass_accept_nonblocking(0)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return 1
            }
            server.serve(connection: connection)
            close(connection)
            if let maxRequests, server.served >= maxRequests { break }
        }
        return 0
    }

    private static func installTerminationHandler() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in FastCGIHost.terminating.store(true, ordering: .relaxed) }
        sigemptyset(&action.sa_mask)
        // No SA_RESTART: a blocked accept() returns EINTR and the loop sees the flag.
        action.sa_flags = 0
        sigaction(SIGTERM, &action, nil)
        // A manager may start the program with SIGTERM blocked (inherited): it must reach us.
        ProcessSignals.unblockTerminationAndIgnoreBrokenPipes()
    }

    /// What lives for the whole process; `serve(connection:)` handles one connection.
    final class Server<H: Handler> {
        let config: Result<Config, ConfigError>
        let services: Result<Services, any Error>
        private(set) var served = 0
        var limitMilliseconds = Int64(FastCGIHost.defaultRequestSeconds) * 1000

        init(process: ProcessContext) {
            config = Result { () throws(ConfigError) in try Config.load(from: process.environment, workingDirectory: nil) }
            services = config.mapError { $0 as any Error }.flatMap { config in Result { try Services.live(config: config) } }
        }

        /// Requests of one connection until the peer closes it or a request did not ask to keep it.
        func serve(connection: Int32) {
            var reader = FastCGI.RecordReader()
            var current: FastCGIRequestBuilder?
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            // Idle until a request begins, then the whole request within the same limit.
            var deadline = monotonicMilliseconds() + limitMilliseconds
            while true {
                // Too slow (a request not whole in time, or idle): this connection ends, however
                // steadily its bytes come.
                guard monotonicMilliseconds() < deadline else { return }
                // Read first (the request is usually there as the connection is accepted), and
                // wait only when nothing is: a poll() a request less.
                let count = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress!, $0.count) }
                if count < 0 && (errno == EAGAIN || errno == EINTR) {
                    let wait = FastCGIHost.wait(connection, for: Int16(POLLIN), until: deadline)
                    // SIGTERM while waiting: a request begun is finished, an idle connection ends.
                    if wait == .interrupted && FastCGIHost.isTerminating && current == nil { return }
                    guard wait == .ready || wait == .interrupted else { return }
                    continue
                }
                guard count > 0 else { return }
                reader.append(buffer[0..<count])
                do {
                    while let record = try reader.next() {
                        let idle = current == nil
                        let outcome = try handle(record, current: &current, connection: connection)
                        if idle && current != nil { deadline = monotonicMilliseconds() + limitMilliseconds }
                        guard let keepGoing = outcome else { continue }
                        if !keepGoing || FastCGIHost.isTerminating { return }
                        deadline = monotonicMilliseconds() + limitMilliseconds
                    }
                } catch {
                    // Malformed records, or a peer that did not read its answer: this connection
                    // ends; the process serves the next one.
                    return
                }
            }
        }

        /// The bytes to the peer within the limit, or the connection given up.
        private func send(_ connection: Int32, _ bytes: [UInt8]) throws(FastCGI.Failure) {
            guard FastCGIHost.write(connection, bytes, until: monotonicMilliseconds() + limitMilliseconds) else {
                throw FastCGI.Failure(reason: "the peer did not read its answer in time")
            }
        }

        /// nil to read on; true after a request was answered on a kept connection; false to close.
        private func handle(
            _ record: FastCGI.Record, current: inout FastCGIRequestBuilder?,
            connection: Int32
        ) throws(FastCGI.Failure) -> Bool? {
            let maxBody = H.maxBodyBytes
            switch FastCGI.RecordType(rawValue: record.type) {
            case .getValues:
                let asked = try FastCGI.decodePairs(record.content).map(\.0)
                let known = ["FCGI_MAX_CONNS": "1", "FCGI_MAX_REQS": "1", "FCGI_MPXS_CONNS": "0"]
                let answer = asked.compactMap { name in known[name].map { (name, $0) } }
                try send(connection, FastCGI.encode(.getValuesResult, requestId: 0, FastCGI.encodePairs(answer)))
                return nil
            case .beginRequest:
                if current != nil {
                    // One request at a time per connection: the process manager runs more processes.
                    try send(connection, FastCGI.endRequest(requestId: record.requestId, status: .cantMultiplexConnections))
                    return nil
                }
                let begun = try FastCGIRequestBuilder(begin: record, maxBody: maxBody)
                guard begun.role == FastCGI.responderRole else {
                    try send(connection, FastCGI.endRequest(requestId: record.requestId, status: .unknownRole))
                    return begun.keepConnection ? nil : false
                }
                current = begun
                return nil
            case .abortRequest:
                guard let request = current, request.requestId == record.requestId else { return nil }
                current = nil
                try send(connection, FastCGI.endRequest(requestId: record.requestId, appStatus: 1, status: .requestComplete))
                return request.keepConnection
            case .params, .stdin, .data:
                guard var request = current, request.requestId == record.requestId else { return nil }
                try request.add(record)
                guard request.complete else {
                    current = request
                    return nil
                }
                current = nil
                try send(connection, FastCGI.answer(requestId: request.requestId, stdout: respond(to: request)))
                served += 1
                return request.keepConnection
            default:
                if record.requestId == 0 {
                    try send(connection, FastCGI.encode(.unknownType, requestId: 0, [record.type, 0, 0, 0, 0, 0, 0, 0]))
                }
                return nil
            }
        }

        /// One request through the handler, as the CGI adapter serves it.
        private func respond(to request: FastCGIRequestBuilder) -> [UInt8] {
            switch config {
            case .failure(let error):
                return CGIAdapter.misconfigured(H.self, error, environment: request.params).bytes
            case .success(let config):
                return CGIAdapter.respond(
                    H.self, request: request.params, body: .received(request.body, total: request.bodyBytes),
                    services: services, logger: Logger(function: H.name, level: config.platform.logLevel)
                ).bytes
            }
        }
    }

    enum Wait { case ready, timedOut, interrupted, failed }

    /// Waits until `connection` is ready for `events` or `deadline` (`monotonicMilliseconds()`) passes.
    static func wait(_ connection: Int32, for events: Int16, until deadline: Int64) -> Wait {
        let remaining = deadline - monotonicMilliseconds()
        guard remaining > 0 else { return .timedOut }
        var descriptor = pollfd(fd: connection, events: events, revents: 0)
        let ready = poll(&descriptor, 1, Int32(clamping: remaining))
        if ready < 0 { return errno == EINTR ? .interrupted : .failed }
        return ready == 0 ? .timedOut : .ready
    }

    /// Every byte of `bytes` written before `deadline`; false when the peer stopped reading (or
    /// went away), or when SIGTERM came while it did not read.
    static func write(_ connection: Int32, _ bytes: [UInt8], until deadline: Int64) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(connection, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                    continue
                }
                guard written < 0, errno == EAGAIN || errno == EINTR else { return false }
                switch wait(connection, for: Int16(POLLOUT), until: deadline) {
                case .ready: continue
                case .interrupted: if isTerminating { return false }
                case .timedOut, .failed: return false
                }
            }
            return true
        }
    }
}
