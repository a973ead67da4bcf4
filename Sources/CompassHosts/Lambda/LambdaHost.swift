import CompassHandlers
import CompassPlatform
import CompassStorage

#if canImport(Glibc)
    import Glibc
#endif

/// AWS Lambda's custom runtime: with `AWS_LAMBDA_RUNTIME_API` set, the executable (packaged as
/// `bootstrap`) loops over the Runtime API (2018-06-01): the next invocation, then its response
/// or its error. The services are built once; every invocation gets its own logger, as under
/// FastCGI. An HTTP event is served as the same CGI request another host would pass.
package enum LambdaHost {
    package static let version = "2018-06-01"

    static func serve<H: Handler>(_ handler: H.Type, process: ProcessContext, runtimeAPI: String) -> Int32 {
        loop(H.self, process: process, runtimeAPI: runtimeAPI, scheduled: nil)
    }

    static func serve<H: DirectlyRunnable>(_ handler: H.Type, process: ProcessContext, runtimeAPI: String) -> Int32 {
        loop(H.self, process: process, runtimeAPI: runtimeAPI) { dependencies in
            try JSON.encode(H(dependencies: dependencies).run())
        }
    }

    /// `scheduled` runs the handler's job for an EventBridge schedule (refresh-cron).
    static func loop<H: Handler>(
        _ handler: H.Type, process: ProcessContext, runtimeAPI: String,
        scheduled: ((Dependencies) throws -> [UInt8])?
    ) -> Int32 {
        // Lambda sends SIGTERM only between invocations, at shutdown: the default action (exit) is right.
        signal(SIGTERM, SIG_DFL)
        ProcessSignals.unblockTerminationAndIgnoreBrokenPipes()
        let transport = CurlTransport()
        let base = "http://\(runtimeAPI)/\(version)/runtime"
        // Secrets in Secrets Manager or Parameter Store are read at the first invocation (the
        // extension that reads them answers only then); without any, everything is built now.
        var prepared: (config: Config, services: Services)? = nil
        if LambdaSecrets.references(in: process.environment).isEmpty {
            switch prepare(process.environment) {
            case .success(let ready): prepared = ready
            case .failure(let failure):
                let message = failure.message
                _ = try? transport.send(
                    post(
                        base + "/init/error", ["errorMessage": .string(message), "errorType": "Runtime.ConfigurationError"],
                        errorType: "Runtime.ConfigurationError"))
                Logger(function: H.name, level: .info).error("lambda_init_failed", ["error": .string(message)])
                return 1
            }
        }
        var failures = 0
        while true {
            let next: HTTPResponse
            do {
                // A long poll: Lambda answers when an invocation comes (the process is frozen meanwhile).
                next = try transport.send(
                    HTTPRequest(
                        method: "GET", url: base + "/invocation/next", timeoutMilliseconds: 24 * 3_600_000,
                        maxResponseBytes: 7 << 20))
                failures = 0
            } catch {
                failures += 1
                if failures >= 5 { return 1 }
                usleep(100_000)
                continue
            }
            guard next.status == 200, let id = next.headers["lambda-runtime-aws-request-id"],
                id.utf8.allSatisfy({ ASCII.isIdentifier($0) || $0 == 45 }), !id.isEmpty
            else { continue }
            if let trace = next.headers["lambda-runtime-trace-id"] {
                setenv("_X_AMZN_TRACE_ID", trace, 1)
            } else {
                unsetenv("_X_AMZN_TRACE_ID")
            }
            let target = base + "/invocation/\(id)"
            if prepared == nil {
                let ready = LambdaSecrets.resolve(process.environment, transport: transport)
                    .mapError { InitFailure(message: "\($0.variable) \($0.problem)") }.flatMap(prepare)
                switch ready {
                case .success(let ready): prepared = ready
                case .failure(let failure):
                    let message = failure.message
                    // The invocation fails with the reason and the process ends: Lambda starts another.
                    _ = try? transport.send(
                        post(
                            target + "/error", ["errorMessage": .string(message), "errorType": "Runtime.ConfigurationError"],
                            errorType: "Runtime.ConfigurationError"))
                    Logger(function: H.name, level: .info).error("lambda_init_failed", ["error": .string(message)])
                    return 1
                }
            }
            let (config, services) = prepared!
            let invocation =
                deadline(next.headers["lambda-runtime-deadline-ms"], now: services.clock.now)
                .map { services.bounded(byDeadline: $0) } ?? services
            answer(
                H.self, next.body, at: target, services: invocation, logger: Logger(function: H.name, level: config.platform.logLevel),
                transport: transport, scheduled: scheduled)
        }
    }

    /// One invocation's event served and its answer posted: an HTTP event as a CGI request, a
    /// schedule as the handler's job, anything else as an invocation error.
    private static func answer<H: Handler>(
        _ handler: H.Type, _ event: [UInt8], at target: String, services: Services, logger: Logger,
        transport: CurlTransport, scheduled: ((Dependencies) throws -> [UInt8])?
    ) {
        switch LambdaEvent.parse(event) {
        case .http(let environment, let body, let shape):
            guard let mounted = LambdaEvent.mounted(environment, at: H.paths, subpaths: H.servesSubpaths) else {
                _ = try? transport.send(
                    HTTPRequest(
                        method: "POST", url: target + "/response", headers: [("Content-Type", "application/json")],
                        body: LambdaEvent.response(.error(.notFound), shape: shape, isHead: environment["REQUEST_METHOD"] == "HEAD")))
                return
            }
            let metrics = Metrics()
            let outcome = CGIAdapter.respond(
                H.self, request: mounted, body: .received(body, total: body.count),
                services: .success(services), logger: logger, metrics: metrics)
            defer { writeMetrics(H.name, metrics.recorded.mapValues(Double.init), services: services) }
            _ = try? transport.send(
                HTTPRequest(
                    method: "POST", url: target + "/response", headers: [("Content-Type", "application/json")],
                    body: LambdaEvent.response(outcome.response, shape: shape, isHead: outcome.isHead)))
        case .schedule:
            guard let scheduled else {
                _ = try? transport.send(
                    post(
                        target + "/error",
                        [
                            "errorMessage": .string("\(H.name) does not run on a schedule"),
                            "errorType": "Runtime.UnknownEvent",
                        ], errorType: "Runtime.UnknownEvent"))
                return
            }
            do {
                let metrics = Metrics()
                let summary = try scheduled(services.dependencies(logger: logger, metrics: metrics))
                // The run's changes, and the gauges an alarm watches, read from the ledger.
                var values = metrics.recorded.mapValues(Double.init)
                if let totals = try? MetricsLedger(store: services.store).read() {
                    values[MetricSeries(MetricCatalog.eventsWaiting)] = Double(totals[MetricSeries(MetricCatalog.eventsWaiting)] ?? 0)
                }
                if let dead = try? services.store.count(prefix: RecordKey.deadRoot) {
                    values[MetricSeries(MetricCatalog.deadLetters)] = Double(dead)
                }
                if let oldest = try? WaitingSince(store: services.store).oldest() {
                    values[MetricSeries(MetricCatalog.oldestQueuedAge)] = MetricsHandler.age(of: oldest, now: services.clock.now)
                } else {
                    values[MetricSeries(MetricCatalog.oldestQueuedAge)] = 0
                }
                writeMetrics(H.name, values, services: services)
                _ = try? transport.send(
                    HTTPRequest(
                        method: "POST", url: target + "/response",
                        headers: [("Content-Type", "application/json")], body: summary))
            } catch {
                let answer = APIError.answer(for: error, logger: logger)
                _ = try? transport.send(
                    post(
                        target + "/error",
                        [
                            "errorMessage": .string(String(decoding: answer.body, as: UTF8.self)),
                            "errorType": "Runtime.JobFailed",
                        ], errorType: "Runtime.JobFailed"))
            }
        case .unknown(let reason):
            logger.warn("lambda_event_refused", ["reason": .string(reason)])
            _ = try? transport.send(
                post(
                    target + "/error",
                    [
                        "errorMessage": .string("\(H.name): \(reason)"),
                        "errorType": "Runtime.UnknownEvent",
                    ], errorType: "Runtime.UnknownEvent"))
        }
    }

    /// Why a process cannot serve (no secret in it).
    struct InitFailure: Error { var message: String }

    /// The configuration and the services from `environment`, or why not.
    private static func prepare(_ environment: [String: String]) -> Result<(config: Config, services: Services), InitFailure> {
        do {
            let config = try Config.load(from: environment, workingDirectory: nil)
            if config.store.location == .unset {
                throw ConfigError(
                    variable: "STORE_URL", problem: "is required on Lambda: etcd (etcd://...) or a shared filesystem (file:///mnt/...)")
            }
            if case .files(let root) = config.store.location, root == "/tmp" || root.hasPrefix("/tmp/") {
                throw ConfigError(
                    variable: "STORE_URL",
                    problem:
                        "is a file store under /tmp, which Lambda neither shares nor keeps: use etcd or a shared filesystem (file:///mnt/...)"
                )
            }
            return .success((config, try Services.live(config: config)))
        } catch {
            return .failure(
                InitFailure(message: (error as? ConfigError).map { "\($0.variable) \($0.problem)" } ?? "the store cannot be opened"))
        }
    }

    /// The invocation's figures as one CloudWatch Embedded Metric Format line on standard
    /// output, which Lambda sends to CloudWatch Logs (namespace `METRICS_NAMESPACE`).
    private static func writeMetrics(_ function: String, _ values: [MetricSeries: Double], services: Services) {
        let milliseconds = Int64((services.clock.now.timeIntervalSince1970 * 1000).rounded(.down))
        guard
            let line = EmbeddedMetricFormat.line(
                values, namespace: services.config.routes.metricsNamespace, function: function, at: milliseconds)
        else { return }
        Descriptor.writeAll(1, Array(line.utf8) + [10])
    }

    /// Time kept back from an invocation's deadline to post its answer.
    static let answerReserveMilliseconds: Int64 = 250

    /// The instant (`monotonicMilliseconds()`) by which the invocation's calls must end, from
    /// `Lambda-Runtime-Deadline-Ms` (Unix milliseconds); nil without a usable header.
    static func deadline(_ header: String?, now: Date) -> Int64? {
        guard let header, let epoch = Int64(header), epoch > 0 else { return nil }
        let remaining = epoch - Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
        return monotonicMilliseconds() + max(0, remaining - answerReserveMilliseconds)
    }

    private static func post(_ url: String, _ body: [String: JSONValue], errorType: String) -> HTTPRequest {
        HTTPRequest(
            method: "POST", url: url, headers: [("Content-Type", "application/json"), ("Lambda-Runtime-Function-Error-Type", errorType)],
            body: JSONValue.object(body).serialized)
    }
}
