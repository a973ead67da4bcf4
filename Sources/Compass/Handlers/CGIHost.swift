#if canImport(Glibc)
import Glibc
#endif

/// The adapter between a CGI host and a handler: environment and stdin in, response on stdout.
/// `main.swift` of each route is one call to `run`.
public enum CGIHost {
    /// The routes with an executable of their own.
    public enum Route: Sendable {
        case connect, callback, disconnect, settings, sendEvent, refreshCron, metaWebhooks
        /// Development only.
        case graphSandbox, devConsole
    }

    public static func run(_ route: Route) -> Never {
        switch route {
        case .connect: run(ConnectHandler.self)
        case .callback: run(CallbackHandler.self)
        case .disconnect: run(DisconnectHandler.self)
        case .settings: run(SettingsHandler.self)
        case .sendEvent: run(SendEventHandler.self)
        case .metaWebhooks: run(MetaWebhooksHandler.self)
        case .refreshCron:
            let environment = processEnvironment()
            if environment["GATEWAY_INTERFACE"] == nil && environment["REQUEST_METHOD"] == nil { runCronDirectly(environment) }
            run(RefreshCronHandler.self)
        case .graphSandbox: run(SandboxHandler.self)
        case .devConsole: run(DevConsoleHandler.self)
        }
    }

    static func run<H: Handler>(_ handler: H.Type) -> Never {
        // httpoxy: a request's `Proxy:` header arrives as HTTP_PROXY; never let a library see it.
        unsetenv("HTTP_PROXY")
        let environment = processEnvironment()
        let response = respond(handler, environment: environment, input: 0)
        let bytes = response.bytes
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(1, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { break }
                offset += written
            }
        }
        exit(0)
    }

    /// `refresh-cron` run by cron or by hand: the jobs, a JSON summary on stdout, exit status 1
    /// only when the job itself could not run.
    static func runCronDirectly(_ environment: [String: String]) -> Never {
        let result = cronDirectly(environment)
        print(result.output)
        exit(result.status)
    }

    static func cronDirectly(_ environment: [String: String]) -> (output: String, status: Int32) {
        let config: Config
        do {
            config = try Config.load(from: environment, workingDirectory: workingDirectory())
        } catch {
            return (String(decoding: JSON.encode(ErrorBody(error: .init(code: "misconfigured", message: error.apiError.message))), as: UTF8.self), 1)
        }
        let logger = Logger(function: RefreshCronHandler.name, level: config.logLevel)
        do {
            let dependencies = try makeDependencies(config: config, logger: logger)
            let summary = try RefreshCronHandler(dependencies: dependencies).run()
            return (String(decoding: JSON.encode(summary), as: UTF8.self), 0)
        } catch let error as APIError {
            return (String(decoding: JSON.encode(ErrorBody(error: .init(code: error.code, message: error.message))), as: UTF8.self), 1)
        } catch {
            logger.error("cron_failed", ["error": .string("\(error)")])
            return (String(decoding: JSON.encode(ErrorBody(error: .init(code: "store_unavailable", message: "The store is unavailable."))), as: UTF8.self), 1)
        }
    }

    /// The process environment, read straight from `environ` (no Foundation set-up per process).
    static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            cursor += 1
        }
        return result
    }

    static func workingDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return String(cString: buffer)
    }

    struct Outcome {
        var response: CGIResponse
        var isHead: Bool
        var bytes: [UInt8] { response.rendered(forHead: isHead) }
    }

    /// Everything but the process: testable with any environment and descriptor.
    static func respond<H: Handler>(_ handler: H.Type, environment: [String: String], input: Int32,
                                    dependencies override: Dependencies? = nil) -> Outcome {
        let started = monotonicMilliseconds()
        let config: Config
        do {
            config = try Config.load(from: environment, workingDirectory: workingDirectory())
        } catch {
            let logger = Logger(function: H.name, level: .info)
            logger.error("misconfigured", ["variable": .string(error.variable), "problem": .string(error.problem)])
            return Outcome(response: .error(error.apiError), isHead: environment["REQUEST_METHOD"] == "HEAD")
        }
        let logger = override?.logger ?? Logger(function: H.name, level: config.logLevel)
        var request: CGIRequest
        do {
            request = try CGIRequest.head(from: environment)
        } catch {
            logger.info("request_rejected", ["code": .string(error.code)])
            return Outcome(response: .error(error), isHead: false)
        }
        let allowed = H.methods.contains(request.method) || (request.method == "HEAD" && H.methods.contains("GET"))
        if allowed {
            do {
                request.body = try CGIRequest.readBody(environment: environment, descriptor: input,
                                                       limits: .init(maxBodyBytes: H.maxBodyBytes))
            } catch {
                logger.info("request_rejected", ["code": .string(error.code)])
                return Outcome(response: .error(error), isHead: request.isHead)
            }
        }
        let response: CGIResponse
        if let override {
            response = H(dependencies: override).respond(to: request, logger: logger)
        } else {
            do {
                let dependencies = try makeDependencies(config: config, logger: logger)
                response = H(dependencies: dependencies).respond(to: request, logger: logger)
            } catch {
                response = .error(dependencies(failed: error, logger: logger))
            }
        }
        logger.info("request", [
            "method": .string(request.method), "status": .int(response.status),
            "duration_ms": .int(Int(monotonicMilliseconds() - started)),
        ])
        return Outcome(response: response, isHead: request.isHead)
    }

    static func makeDependencies(config: Config, logger: Logger) throws(StoreError) -> Dependencies {
        let store: any KeyValueStore
        switch config.store {
        case .files(let root):
            store = try FileStore(root: root)
        case .etcd(let endpoints, let namespace):
            let credentials = config.etcdUser.flatMap { user in config.etcdPassword.map { (user: user, password: $0) } }
            store = EtcdStore(endpoints: endpoints, namespace: namespace, transport: CurlTransport(caFile: config.etcdCAFile),
                              credentials: credentials)
        }
        return Dependencies(config: config, store: store, http: CurlTransport(), clock: SystemClock(),
                            random: SecureRandom(), logger: logger)
    }

    private static func dependencies(failed error: StoreError, logger: Logger) -> APIError {
        logger.error("store_failed", ["step": "open", "error": .string("\(error)")])
        return .storeUnavailable
    }
}
