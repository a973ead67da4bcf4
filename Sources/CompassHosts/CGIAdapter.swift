import CompassHandlers
import CompassPlatform
import CompassStorage
import GlibcCompat

#if canImport(Glibc)
    import Glibc
#endif

/// The CGI adapter (RFC 3875): the request from the meta-variables and stdin, the answer on
/// stdout as `Status:`, headers, blank line, body.
package enum CGIAdapter {
    static func serve<H: Handler>(_ handler: H.Type, process: ProcessContext) -> Int32 {
        // A body of hundreds of kilobytes (a batch of events) takes several times its size in
        // memory: the heap is grown for it at once, on huge pages where the kernel offers them
        // (GlibcCompat/heap.c; about 1,100 fewer page faults for 1000 events, see BENCHMARKS.md).
        if let length = process.environment["CONTENT_LENGTH"].flatMap(Int.init), length >= 256 << 10, length <= H.maxBodyBytes {
            compass_prepare_heap(min(length * 12, 64 << 20))
        }
        let outcome = respond(H.self, environment: process.environment, input: 0)
        // The head and the body written one after the other: a dry run's body is a megabyte,
        // not copied again behind its headers.
        if Descriptor.writeAll(1, outcome.response.head(forHead: outcome.isHead)) == 0, !outcome.isHead {
            Descriptor.writeAll(1, outcome.response.body)
        }
        return 0
    }

    package struct Answer {
        package var response: CGIResponse
        package var isHead: Bool
        package var bytes: [UInt8] { response.rendered(forHead: isHead) }
    }

    /// One process, one request: the configuration and the services from the same environment
    /// that carries the request. Everything but the process itself: testable with any
    /// environment and descriptor.
    package static func respond<H: Handler>(_ handler: H.Type, environment: [String: String], input: Int32) -> Answer {
        let config: Config
        do {
            // Under a host the working directory is the host's choice: no default store there.
            config = try Config.load(from: environment, workingDirectory: nil)
        } catch {
            return misconfigured(H.self, error, environment: environment)
        }
        let services = Result { try Services.live(config: config) }
        return respond(
            H.self, request: environment, body: .descriptor(input), services: services,
            logger: Logger(function: H.name, level: config.platform.logLevel))
    }

    /// The answer when the configuration itself is wrong: no request is served, and the one
    /// rule logs which variable (at info level: there is no LOG_LEVEL to go by).
    static func misconfigured<H: Handler>(_ handler: H.Type, _ error: ConfigError, environment: [String: String]) -> Answer {
        let answer = APIError.answer(for: error, logger: Logger(function: H.name, level: .info))
        return Answer(response: .error(answer), isHead: environment["REQUEST_METHOD"] == "HEAD")
    }

    /// Where a request's body comes from: the program's stdin (CGI), or what the host already
    /// received (FastCGI's STDIN records: the bytes kept, and how many arrived).
    package enum Body {
        case descriptor(Int32)
        case received([UInt8], total: Int)
    }

    /// One request served with services built before it (once per process in a host that
    /// stays warm): head, method check, body, handler, a log line.
    package static func respond<H: Handler>(
        _ handler: H.Type, request environment: [String: String], body: Body,
        services: Result<Services, any Error>, logger: Logger, metrics: Metrics = Metrics()
    ) -> Answer {
        let started = monotonicMilliseconds()
        var request: CGIRequest
        do {
            request = try CGIRequest.head(from: environment)
        } catch {
            logger.info("request_rejected", ["code": .string(error.code)])
            return Answer(response: .error(error), isHead: false)
        }
        let limits = CGIRequest.Limits(maxBodyBytes: H.maxBodyBytes)
        if H.allows(request.method) {
            do {
                switch body {
                case .descriptor(let input):
                    request.body = try CGIRequest.readBody(environment: environment, descriptor: input, limits: limits)
                case .received(let bytes, let total):
                    request.body = try CGIRequest.checkBody(bytes, total: total, environment: environment, limits: limits)
                }
            } catch {
                logger.info("request_rejected", ["code": .string(error.code)])
                if case .descriptor(let input) = body { CGIRequest.drainBody(environment: environment, descriptor: input) }
                return Answer(response: .error(error), isHead: request.isHead)
            }
        } else if case .descriptor(let input) = body {
            // Answered without reading the body (405): read it away so the host gets the answer.
            CGIRequest.drainBody(environment: environment, descriptor: input)
        }
        let response: CGIResponse
        switch services {
        case .success(let services):
            response = H(dependencies: services.dependencies(logger: logger, metrics: metrics)).respond(to: request)
        case .failure(let error):
            response = .error(APIError.answer(for: error, logger: logger))
        }
        logger.info(
            "request",
            [
                "method": .string(request.method), "status": .int(response.status),
                "duration_ms": .int(Int(monotonicMilliseconds() - started)),
            ])
        return Answer(response: response, isHead: request.isHead)
    }
}
