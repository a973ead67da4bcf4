#if canImport(Glibc)
import Glibc
#endif
import CompassHandlers
import CompassPlatform
import Synchronization

/// The FastCGI adapter: a process manager (lighttpd's `mod_fastcgi` with `bin-path`,
/// `spawn-fcgi`, Apache's `mod_fcgid`) starts the program with a listening socket as its
/// standard input; it accepts connections and serves their requests one at a time through the
/// same handler values as CGI. Configuration and services are built once for the process; each
/// request gets its own request, logger and dependencies, so nothing of one reaches the next.
/// SIGTERM lets the request in flight finish; `MAX_REQUESTS` recycles the process.
package enum FastCGIHost {
    /// Set by SIGTERM: finish the request in flight, then exit.
    fileprivate static let terminating = Atomic<Bool>(false)
    static var isTerminating: Bool { terminating.load(ordering: .relaxed) }
    /// A peer silent this long loses its connection (the process goes on).
    static let readTimeoutSeconds = 30

    /// True when standard input is a listening socket (FCGI_LISTENSOCK_FILENO).
    package static var startedByProcessManager: Bool {
        var listening: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) == 0 && listening != 0
    }

    static func serve<H: Handler>(_ handler: H.Type, process: ProcessContext) -> Int32 {
        installTerminationHandler()
        let server = Server<H>(process: process)
        let maxRequests = process.environment["MAX_REQUESTS"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }
        while !isTerminating {
            let connection = accept(0, nil, nil)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return 1
            }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            var timeout = timeval(tv_sec: readTimeoutSeconds, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
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
        let config: Result<Config, Config.Error>
        let services: Result<Services, any Error>
        private(set) var served = 0

        init(process: ProcessContext) {
            config = Result { () throws(Config.Error) in try Config.load(from: process.environment, workingDirectory: nil) }
            services = config.mapError { $0 as any Error }.flatMap { config in Result { try Services.live(config: config) } }
        }

        /// Requests of one connection until the peer closes it or a request did not ask to keep it.
        func serve(connection: Int32) {
            var reader = FastCGI.RecordReader()
            var current: FastCGIRequestBuilder?
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress!, $0.count) }
                if count < 0 && errno == EINTR {
                    // SIGTERM while waiting: a request begun is finished, an idle connection ends.
                    if FastCGIHost.isTerminating && current == nil { return }
                    continue
                }
                guard count > 0 else { return }
                reader.append(buffer[0..<count])
                do {
                    while let record = try reader.next() {
                        guard let keepGoing = try handle(record, current: &current, connection: connection) else { continue }
                        if !keepGoing || FastCGIHost.isTerminating { return }
                    }
                } catch {
                    // Malformed records: this connection ends; the process serves the next one.
                    return
                }
            }
        }

        /// nil to read on; true after a request was answered on a kept connection; false to close.
        private func handle(_ record: FastCGI.Record, current: inout FastCGIRequestBuilder?,
                            connection: Int32) throws(FastCGI.Failure) -> Bool? {
            let maxBody = H.maxBodyBytes
            switch FastCGI.RecordType(rawValue: record.type) {
            case .getValues:
                let asked = try FastCGI.decodePairs(record.content).map(\.0)
                let known = ["FCGI_MAX_CONNS": "1", "FCGI_MAX_REQS": "1", "FCGI_MPXS_CONNS": "0"]
                let answer = asked.compactMap { name in known[name].map { (name, $0) } }
                Descriptor.writeAll(connection, FastCGI.encode(.getValuesResult, requestId: 0, FastCGI.encodePairs(answer)))
                return nil
            case .beginRequest:
                if current != nil {
                    // One request at a time per connection: the process manager runs more processes.
                    Descriptor.writeAll(connection, FastCGI.endRequest(requestId: record.requestId, status: .cantMultiplexConnections))
                    return nil
                }
                let begun = try FastCGIRequestBuilder(begin: record, maxBody: maxBody)
                guard begun.role == FastCGI.responderRole else {
                    Descriptor.writeAll(connection, FastCGI.endRequest(requestId: record.requestId, status: .unknownRole))
                    return begun.keepConnection ? nil : false
                }
                current = begun
                return nil
            case .abortRequest:
                guard let request = current, request.requestId == record.requestId else { return nil }
                current = nil
                Descriptor.writeAll(connection, FastCGI.endRequest(requestId: record.requestId, appStatus: 1, status: .requestComplete))
                return request.keepConnection
            case .params, .stdin, .data:
                guard var request = current, request.requestId == record.requestId else { return nil }
                try request.add(record)
                guard request.complete else {
                    current = request
                    return nil
                }
                current = nil
                Descriptor.writeAll(connection, FastCGI.answer(requestId: request.requestId, stdout: respond(to: request)))
                served += 1
                return request.keepConnection
            default:
                if record.requestId == 0 {
                    Descriptor.writeAll(connection, FastCGI.encode(.unknownType, requestId: 0, [record.type, 0, 0, 0, 0, 0, 0, 0]))
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
                return CGIAdapter.respond(H.self, request: request.params, body: .received(request.body, total: request.bodyBytes),
                                          services: services, logger: Logger(function: H.name, level: config.logLevel)).bytes
            }
        }
    }
}
