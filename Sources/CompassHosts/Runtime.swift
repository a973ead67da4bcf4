import CompassHandlers
import CompassPlatform
import CompassStorage
import GlibcCompat

#if canImport(Glibc)
    import Glibc
#endif

/// What a route's `main.swift` calls: reads the process once, finds out which host started it
/// and serves the handler that way: AWS Lambda (`AWS_LAMBDA_RUNTIME_API`: many invocations), a
/// FastCGI process manager (a listening socket on standard input: many requests), a CGI host
/// (one request, RFC 3875) or, for a handler that also runs without a request, cron (no CGI
/// variables at all). A process that serves request after request keeps its heap between them
/// (`compass_keep_heap`, GlibcCompat/heap.c).
package enum Runtime {
    package static func run<H: Handler>(_ handler: H.Type) -> Never {
        let process = ProcessContext.read()
        serveWarm(
            process, lambda: { LambdaHost.serve(H.self, process: process, runtimeAPI: $0) },
            fastCGI: { FastCGIHost.serve(H.self, process: process) })
        exit(CGIAdapter.serve(H.self, process: process))
    }

    package static func run<H: DirectlyRunnable>(_ handler: H.Type) -> Never {
        let process = ProcessContext.read()
        serveWarm(
            process, lambda: { LambdaHost.serve(H.self, process: process, runtimeAPI: $0) },
            fastCGI: { FastCGIHost.serve(H.self, process: process) })
        exit(process.isCGIRequest ? CGIAdapter.serve(H.self, process: process) : DirectRun.run(H.self, process: process))
    }

    /// A host that keeps the process for request after request (Lambda, a FastCGI manager),
    /// served until it ends; returns only when neither started the process.
    private static func serveWarm(_ process: ProcessContext, lambda: (String) -> Int32, fastCGI: () -> Int32) {
        if let api = process.environment["AWS_LAMBDA_RUNTIME_API"] {
            compass_keep_heap()
            exit(lambda(api))
        }
        if FastCGIHost.startedByProcessManager {
            compass_keep_heap()
            exit(fastCGI())
        }
    }
}

/// What a host adapter reads from the process, once, before any handler runs.
package struct ProcessContext: Sendable {
    package var environment: [String: String]
    package var workingDirectory: String

    package init(environment: [String: String], workingDirectory: String) {
        self.environment = environment
        self.workingDirectory = workingDirectory
    }

    /// A CGI host sets `GATEWAY_INTERFACE` (and always `REQUEST_METHOD`); cron sets neither.
    package var isCGIRequest: Bool { environment["GATEWAY_INTERFACE"] != nil || environment["REQUEST_METHOD"] != nil }

    /// The environment straight from `environ` (no Foundation set-up per process) and the
    /// working directory. httpoxy: a request's `Proxy:` header arrives as HTTP_PROXY; it is
    /// removed first so that no library (libcurl) can take it for a proxy setting.
    package static func read() -> ProcessContext {
        unsetenv("HTTP_PROXY")
        var environment: [String: String] = [:]
        // Room for every entry first: grown one doubling at a time, the table was rehashed six
        // times for a host's fifty variables.
        var count = 0
        while environ[count] != nil { count += 1 }
        environment.reserveCapacity(count)
        var cursor = environ
        while let entry = cursor.pointee {
            // Name and value split at the first "=" byte, as getenv(3) reads them.
            if let equals = strchr(entry, 0x3d) {
                let name = UnsafeRawBufferPointer(start: entry, count: entry.distance(to: equals))
                let value = UnsafeRawBufferPointer(start: equals + 1, count: strlen(equals + 1))
                environment[String(decoding: name, as: UTF8.self)] = String(decoding: value, as: UTF8.self)
            }
            cursor += 1
        }
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let directory = buffer.withUnsafeMutableBufferPointer { pointer -> String in
            guard let base = pointer.baseAddress, getcwd(base, pointer.count) != nil else { return "/" }
            return String(decoding: UnsafeBufferPointer(start: base, count: strlen(base)), as: UTF8.self)
        }
        return ProcessContext(environment: environment, workingDirectory: directory)
    }
}

/// What lives as long as the process: the configuration, the store, the clients. A host builds
/// it once; every request gets its own logger on top (`dependencies(logger:)`), so nothing of
/// one request reaches the next.
package struct Services: Sendable {
    package var config: Config
    package var store: any KeyValueStore
    package var http: any HTTPTransport
    package var clock: any Clock
    package var random: any RandomSource

    package static func live(config: Config) throws -> Services {
        Services(config: config, store: try config.store.open(), http: CurlTransport(), clock: SystemClock(), random: SecureRandom())
    }

    /// The same services for one request that must be answered by `deadline`
    /// (`monotonicMilliseconds()`): every Graph and store call ends by then, and refresh-cron's
    /// budget ends a second before.
    package func bounded(byDeadline deadline: Int64) -> Services {
        var bounded = self
        bounded.http = DeadlineTransport(base: http, deadline: deadline)
        bounded.store = store.bounded(byDeadline: deadline)
        let seconds = Int((deadline - monotonicMilliseconds()) / 1000) - 1
        bounded.config.routes.refreshBudgetSeconds = max(0, min(config.routes.refreshBudgetSeconds, seconds))
        return bounded
    }

    package func dependencies(logger: Logger, metrics: Metrics = Metrics()) -> Dependencies {
        Dependencies(config: config, store: store, http: http, clock: clock, random: random, logger: logger, metrics: metrics)
    }
}
