import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage

#if canImport(Glibc)
    import Glibc
#endif

/// The Lambda Runtime API (2018-06-01) as AWS documents it, on loopback: invocations handed out
/// one at a time, their responses and errors written down.
final class LambdaEmulator: @unchecked Sendable {
    struct Outcome: Equatable {
        var kind: String
        var body: String
        /// Unix milliseconds when the answer came, and the deadline the invocation was given.
        var receivedAt: Int64 = 0
        var deadline: Int64 = 0
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        static func == (a: Outcome, b: Outcome) -> Bool { a.kind == b.kind && a.body == b.body }
    }
    /// Shared with the server's threads, which may outlive the emulator (a long poll pending).
    final class State: Sendable {
        let value = Mutex(
            (
                queue: [(id: String, event: String, seconds: Double)](), outcomes: [String: Outcome](), deadlines: [String: Int64](),
                initError: String?.none
            ))
        func withLock<T>(
            _ body: (
                inout (
                    queue: [(id: String, event: String, seconds: Double)], outcomes: [String: Outcome], deadlines: [String: Int64],
                    initError: String?
                )
            ) -> T
        ) -> T {
            value.withLock { body(&$0) }
        }
    }
    private let state = State()
    private(set) var server: LoopbackServer! = nil

    init() throws {
        let state = self.state
        server = try LoopbackServer { method, target, body in
            let prefix = "/2018-06-01/runtime"
            if method == "GET", target == prefix + "/invocation/next" {
                let deadline = Date().addingTimeInterval(30)
                while Date() < deadline {
                    if let next = state.withLock({ $0.queue.isEmpty ? nil : $0.queue.removeFirst() }) {
                        let deadline = LambdaEmulator.now + Int64(next.seconds * 1000)
                        state.withLock { $0.deadlines[next.id] = deadline }
                        return HTTPResponse(
                            status: 200,
                            headers: [
                                "Lambda-Runtime-Aws-Request-Id": next.id,
                                "Lambda-Runtime-Deadline-Ms": String(deadline),
                                "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                                "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:eu-west-1:000000000000:function:test",
                                "Content-Type": "application/json",
                            ], body: Array(next.event.utf8))
                    }
                    usleep(5_000)
                }
                return HTTPResponse(status: 500, body: [])
            }
            let text = String(decoding: body, as: UTF8.self)
            if method == "POST", target == prefix + "/init/error" {
                state.withLock { $0.initError = text }
                return HTTPResponse(status: 202, body: Array("{}".utf8))
            }
            let parts = target.dropFirst((prefix + "/invocation/").count).split(separator: "/")
            if method == "POST", target.hasPrefix(prefix + "/invocation/"), parts.count == 2 {
                let id = String(parts[0])
                state.withLock {
                    $0.outcomes[id] = Outcome(
                        kind: String(parts[1]), body: text, receivedAt: LambdaEmulator.now, deadline: $0.deadlines[id] ?? 0)
                }
                return HTTPResponse(status: 202, body: Array("{}".utf8))
            }
            return HTTPResponse(status: 404, body: [])
        }
    }

    var address: String { "127.0.0.1:\(server.port)" }
    /// Queues an invocation that has `seconds` to run (Lambda's function timeout).
    func invoke(_ id: String, _ event: String, seconds: Double = 30) { state.withLock { $0.queue.append((id, event, seconds)) } }
    static var now: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
    var initError: String? { state.withLock { $0.initError } }

    /// The outcome of each invocation, once all have one (or the wait ends).
    func outcome(_ id: String, seconds: Double = 30) -> Outcome? { outcomes([id], seconds: seconds)[id] }

    func outcomes(_ ids: [String], seconds: Double = 20) -> [String: Outcome] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let done = state.withLock { state in ids.allSatisfy { state.outcomes[$0] != nil } }
            if done { break }
            usleep(10_000)
        }
        return state.withLock { $0.outcomes }
    }
}

/// A route executable as Lambda starts it: `AWS_LAMBDA_RUNTIME_API` and the configuration.
struct LambdaFunction {
    let process: Process
    let folder: URL

    static let jwtSecret = "lambda-jwt-secret-0123456789abcdef0123"

    static func start(
        _ name: String, emulator: LambdaEmulator, store: String? = nil, environment extra: [String: String] = [:],
        removing: [String] = [], folder shared: URL? = nil
    ) throws -> LambdaFunction {
        // Not under /tmp (where a clone may live too): a Lambda host refuses a file store there.
        let folder = shared ?? URL(fileURLWithPath: "/var/tmp/compass-lambda-tests/\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = Executables.url(name)
        process.environment = [
            "AWS_LAMBDA_RUNTIME_API": emulator.address, "SWIFT_BACKTRACE": "enable=no",
            "META_APP_ID": World.appId, "META_APP_SECRET": World.appSecret, "META_GRAPH_URL": "http://127.0.0.1:9/graph",
            "META_DIALOG_URL": "https://www.facebook.com", "OAUTH_REDIRECT_BASE_URL": "https://compass.example",
            "COMPASS_JWT_SECRET": jwtSecret, "CREDENTIALS_KEY": Data(Crypto.randomBytes(32)).base64EncodedString(),
            "CRON_SECRET": "cron-secret-0123456789abcdef", "STORE_URL": store ?? "file://\(folder.path)/store", "LOG_LEVEL": "error",
        ].merging(extra) { _, new in new }.filter { !removing.contains($0.key) }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return LambdaFunction(process: process, folder: folder)
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: folder)
    }

    static func session(_ tenant: String) -> String {
        SessionVerifier(secret: Array(jwtSecret.utf8)).mint(tenantId: tenant, expiresAt: Date().unixSeconds + 3600)
    }
}

@Suite struct LambdaEventTests {
    @Test func anHTTPAPIEventBecomesTheCGIRequestAndItsAnswerComesBackInItsShape() throws {
        let event =
            #"{"version":"2.0","rawPath":"/api/connect/meta/events","rawQueryString":"dryRun=1","cookies":["a=1","compass_session=xyz"],"headers":{"content-type":"application/json","x-forwarded-for":"203.0.113.9"},"requestContext":{"http":{"method":"POST","sourceIp":"203.0.113.9"}},"body":"eyJhIjoxfQ==","isBase64Encoded":true}"#
        guard case .http(let environment, let body, let shape) = LambdaEvent.parse(Array(event.utf8)) else {
            Issue.record("not an HTTP event")
            return
        }
        #expect(shape == .httpV2 && body == Array(#"{"a":1}"#.utf8))
        #expect(environment["REQUEST_METHOD"] == "POST" && environment["REQUEST_URI"] == "/api/connect/meta/events?dryRun=1")
        #expect(environment["QUERY_STRING"] == "dryRun=1" && environment["CONTENT_TYPE"] == "application/json")
        #expect(environment["HTTP_COOKIE"] == "a=1; compass_session=xyz" && environment["REMOTE_ADDR"] == "203.0.113.9")
        #expect(environment["CONTENT_LENGTH"] == "7")
        let request = try CGIRequest.head(from: environment)
        #expect(request.path == "/api/connect/meta/events" && request.query.single("dryRun") == "1")

        var response = CGIResponse.redirect(to: "https://www.facebook.com/v26.0/dialog/oauth?x=1")
        response.headers.append(("Set-Cookie", "a=b; Path=/"))
        let answer = try #require(
            try JSONSerialization.jsonObject(with: Data(LambdaEvent.response(response, shape: .httpV2, isHead: false))) as? [String: Any])
        #expect(answer["statusCode"] as? Int == 302)
        #expect((answer["headers"] as? [String: String])?["Location"] == "https://www.facebook.com/v26.0/dialog/oauth?x=1")
        #expect(answer["cookies"] as? [String] == ["a=b; Path=/"])
        let binary = CGIResponse(status: 200, headers: [("Content-Type", "image/png")], body: [0, 255])
        let encoded = try #require(
            try JSONSerialization.jsonObject(with: Data(LambdaEvent.response(binary, shape: .httpV2, isHead: false))) as? [String: Any])
        #expect(encoded["isBase64Encoded"] as? Bool == true && encoded["body"] as? String == "AP8=")
    }

    @Test func aTextBodyQuotedFromItsBytesIsTheSameAnswerAsAString() throws {
        // ASCII JSON with every character that needs an escape, and a body outside ASCII.
        for text in ["{\"a\":\"q\\\"b\\c\",\"n\":\"x\ny\tz\u{1}\",\"u\":\"/\"}", "{\"name\":\"Zoë\"}", ""] {
            var response = CGIResponse(status: 207, headers: [("Content-Type", "application/json"), ("X-A", "1")], body: Array(text.utf8))
            response.headers.append(("Set-Cookie", "a=b"))
            for shape in [LambdaEvent.Shape.httpV2, .restV1(multiValue: false), .loadBalancer(multiValue: true)] {
                let answer = LambdaEvent.response(response, shape: shape, isHead: false)
                let parsed = try JSONParser.parse(answer)
                #expect(parsed["body"] == .string(text))
                // The same bytes as the whole answer serialized as one value.
                #expect(answer == parsed.serialized, "\(String(decoding: answer, as: UTF8.self))")
            }
        }
    }

    @Test func aTextBodyThatIsNotUTF8IsRepairedNotPassedThrough() throws {
        let response = CGIResponse(status: 200, headers: [("Content-Type", "text/plain")], body: [0x61, 0xFF, 0x62, 0xC3])
        let answer = LambdaEvent.response(response, shape: .httpV2, isHead: false)
        #expect(try JSONParser.parse(answer)["body"] == .string("a\u{FFFD}b\u{FFFD}"))
    }

    @Test func restAndLoadBalancerEventsSchedulesAndTheRest() throws {
        let rest =
            #"{"httpMethod":"GET","path":"/api/connect/meta/settings","multiValueHeaders":{"Cookie":["compass_session=abc"]},"multiValueQueryStringParameters":{"adAccountId":["act_1"]},"requestContext":{"identity":{"sourceIp":"198.51.100.1"}},"body":null,"isBase64Encoded":false}"#
        guard case .http(let environment, _, let shape) = LambdaEvent.parse(Array(rest.utf8)) else {
            Issue.record("not an HTTP event")
            return
        }
        #expect(shape == .restV1(multiValue: true) && environment["HTTP_COOKIE"] == "compass_session=abc")
        #expect(environment["QUERY_STRING"] == "adAccountId=act_1" && environment["REMOTE_ADDR"] == "198.51.100.1")
        let multi = try #require(
            try JSONSerialization.jsonObject(with: Data(LambdaEvent.response(.json(200, ["ok": true]), shape: shape, isHead: false)))
                as? [String: Any])
        #expect((multi["multiValueHeaders"] as? [String: [String]])?["Content-Type"] == ["application/json; charset=utf-8"])
        let alb =
            #"{"httpMethod":"GET","path":"/","headers":{"host":"x"},"requestContext":{"elb":{"targetGroupArn":"arn"}},"body":"","isBase64Encoded":false}"#
        guard case .http(_, _, let albShape) = LambdaEvent.parse(Array(alb.utf8)) else {
            Issue.record("not an HTTP event")
            return
        }
        #expect(albShape == .loadBalancer(multiValue: false))
        // A load balancer passes the query as the client sent it, percent-encoded; API Gateway
        // decodes it. Both become the same CGI query string.
        let encodedByClient =
            #"{"httpMethod":"GET","path":"/","headers":{},"queryStringParameters":{"q":"a%2Bb%20c","e%3Dx":"1"},"requestContext":{"elb":{"targetGroupArn":"arn"}},"body":"","isBase64Encoded":false}"#
        let decodedByGateway =
            #"{"httpMethod":"GET","path":"/","headers":{},"queryStringParameters":{"q":"a+b c","e=x":"1"},"requestContext":{"identity":{}},"body":null,"isBase64Encoded":false}"#
        guard case .http(let fromALB, _, _) = LambdaEvent.parse(Array(encodedByClient.utf8)),
            case .http(let fromGateway, _, _) = LambdaEvent.parse(Array(decodedByGateway.utf8))
        else {
            Issue.record("not HTTP events")
            return
        }
        #expect(
            fromALB["QUERY_STRING"] == fromGateway["QUERY_STRING"],
            "\(fromALB["QUERY_STRING"] ?? "") vs \(fromGateway["QUERY_STRING"] ?? "")")
        #expect(QueryParameters(parsing: fromALB["QUERY_STRING"] ?? "").single("q") == "a+b c")
        #expect(LambdaEvent.parse(Array(#"{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}"#.utf8)) == .schedule)
        #expect(LambdaEvent.parse(Array(#"{"source":"aws.scheduler","detail-type":"Scheduled Event"}"#.utf8)) == .schedule)
        guard case .unknown = LambdaEvent.parse(Array(#"{"Records":[{"eventSource":"aws:sqs"}]}"#.utf8)) else {
            Issue.record("an SQS event was taken")
            return
        }
        guard case .unknown = LambdaEvent.parse(Array("not json".utf8)) else {
            Issue.record("garbage was taken")
            return
        }
    }
}

/// The route executables as custom runtimes against the emulator: many invocations in one
/// process, two tenants interleaved, errors and init errors, refresh-cron by schedule.
@Suite(.serialized) struct LambdaRuntimeTests {
    static func httpEvent(_ method: String, _ path: String, tenant: String?, query: String = "") -> String {
        let cookies = tenant.map { #","cookies":["compass_session=\#(LambdaFunction.session($0))"]"# } ?? ""
        return
            #"{"version":"2.0","rawPath":"\#(path)","rawQueryString":"\#(query)"\#(cookies),"headers":{"host":"lambda.example"},"requestContext":{"http":{"method":"\#(method)","sourceIp":"203.0.113.7"}},"isBase64Encoded":false}"#
    }

    @Test func oneProcessServesManyInvocationsInTheirShapes() throws {
        let emulator = try LambdaEmulator()
        defer { emulator.server.stop() }
        let function = try LambdaFunction.start("connect", emulator: emulator)
        defer { function.stop() }
        emulator.invoke("a1", Self.httpEvent("GET", "/api/connect/meta", tenant: "tenant_one"))
        emulator.invoke("a2", Self.httpEvent("GET", "/api/connect/meta", tenant: nil))
        emulator.invoke("a3", #"{"Records":[]}"#)
        emulator.invoke("a4", Self.httpEvent("GET", "/api/connect/meta", tenant: "tenant_two"))
        emulator.invoke("a5", Self.httpEvent("POST", "/api/connect/meta", tenant: "tenant_one"))
        let session = LambdaFunction.session("tenant_one")
        emulator.invoke(
            "a6",
            #"{"httpMethod":"GET","path":"/api/connect/meta","multiValueHeaders":{"Cookie":["compass_session=\#(session)"]},"requestContext":{"identity":{"sourceIp":"198.51.100.1"}},"body":null,"isBase64Encoded":false}"#
        )
        emulator.invoke(
            "a7",
            #"{"httpMethod":"GET","path":"/api/connect/meta","headers":{"authorization":"Bearer \#(session)"},"requestContext":{"elb":{"targetGroupArn":"arn:aws:elasticloadbalancing:eu-west-1:000000000000:targetgroup/t/0"}},"body":"","isBase64Encoded":false}"#
        )
        let outcomes = emulator.outcomes(["a1", "a2", "a3", "a4", "a5", "a6", "a7"])
        #expect(function.process.isRunning, "the process went on after every invocation")
        let first = try #require(outcomes["a1"])
        #expect(first.kind == "response" && first.json["statusCode"] as? Int == 302)
        let location = (first.json["headers"] as? [String: String])?["Location"] ?? ""
        #expect(location.hasPrefix("https://www.facebook.com/v26.0/dialog/oauth?") && location.contains("state="))
        #expect(outcomes["a2"]?.json["statusCode"] as? Int == 401)
        #expect(outcomes["a3"]?.kind == "error" && outcomes["a3"]?.json["errorType"] as? String == "Runtime.UnknownEvent")
        let second = (outcomes["a4"]?.json["headers"] as? [String: String])?["Location"] ?? ""
        #expect(outcomes["a4"]?.json["statusCode"] as? Int == 302 && second != location, "each tenant its own state")
        #expect(outcomes["a5"]?.json["statusCode"] as? Int == 405)
        // A REST API event with multi-value headers is answered in them; a load balancer's in its shape.
        let rest = outcomes["a6"]?.json["multiValueHeaders"] as? [String: [String]]
        #expect(
            outcomes["a6"]?.json["statusCode"] as? Int == 302 && rest?["Location"]?.first?.contains("state=") == true,
            "\(String(describing: outcomes["a6"]))")
        #expect(outcomes["a7"]?.json["statusCode"] as? Int == 302 && outcomes["a7"]?.json["statusDescription"] as? String == "302 OK")
        #expect((outcomes["a7"]?.json["headers"] as? [String: String])?["Location"]?.contains("state=") == true)
    }

    @Test func refreshCronRunsByScheduleAndRefusesHTTPWithoutTheSecret() throws {
        let emulator = try LambdaEmulator()
        defer { emulator.server.stop() }
        let function = try LambdaFunction.start("refresh-cron", emulator: emulator)
        defer { function.stop() }
        emulator.invoke("s1", #"{"version":"0","source":"aws.events","detail-type":"Scheduled Event","detail":{}}"#)
        emulator.invoke("s2", Self.httpEvent("POST", "/api/cron/meta/refresh", tenant: nil))
        let outcomes = emulator.outcomes(["s1", "s2"])
        #expect(outcomes["s1"]?.kind == "response" && outcomes["s1"]?.json["tokens"] != nil, "\(String(describing: outcomes["s1"]))")
        #expect(outcomes["s2"]?.json["statusCode"] as? Int == 401)
    }

    /// The AWS Parameters and Secrets Lambda Extension as AWS documents it: `GET
    /// /secretsmanager/get?secretId=ID` and `GET /systemsmanager/parameters/get?name=N&withDecryption=true`
    /// with the session token in `X-Aws-Parameters-Secrets-Token` (anything else is refused), the
    /// answers in the shapes of GetSecretValue and GetParameter, and nothing during INIT (the
    /// extension answers only while an invocation runs).
    final class SecretsExtension: @unchecked Sendable {
        let server: LoopbackServer
        let invoking = Mutex(false)
        let calls = Mutex(0)
        init(token: String, secrets: [String: String], parameters: [String: String]) throws {
            let box = Box()
            server = try LoopbackServer(headers: { method, target, headers, _ in
                let extensionState = box.value!
                extensionState.calls.withLock { $0 += 1 }
                guard extensionState.invoking.withLock({ $0 }) else {
                    return HTTPResponse(status: 400, body: Array("not ready: INIT".utf8))
                }
                guard method == "GET", headers["x-aws-parameters-secrets-token"] == token else {
                    return HTTPResponse(status: 401, body: Array("missing or wrong X-Aws-Parameters-Secrets-Token".utf8))
                }
                let parts = target.split(separator: "?", maxSplits: 1)
                let query = QueryParameters(parsing: parts.count > 1 ? parts[1] : "")
                switch parts.first {
                case "/secretsmanager/get":
                    guard let id = query.single("secretId"), let value = secrets[id] else {
                        return HTTPResponse(status: 400, body: Array("ResourceNotFoundException".utf8))
                    }
                    return HTTPResponse(
                        status: 200, headers: ["content-type": "application/json"],
                        body: JSON.encode(
                            JSONValue.object([
                                "ARN": .string(id), "Name": .string(String(id.split(separator: ":").last ?? "")),
                                "SecretString": .string(value),
                                "VersionId": "v1", "VersionStages": .array(["AWSCURRENT"]), "CreatedDate": "2026-12-01T00:00:00Z",
                            ])))
                case "/systemsmanager/parameters/get":
                    guard query.single("withDecryption") == "true", let name = query.single("name"), let value = parameters[name] else {
                        return HTTPResponse(status: 400, body: Array("ParameterNotFound".utf8))
                    }
                    return HTTPResponse(
                        status: 200, headers: ["content-type": "application/json"],
                        body: JSON.encode(
                            JSONValue.object([
                                "Parameter": .object([
                                    "Name": .string(name), "Type": "SecureString", "Value": .string(value), "Version": .int(1),
                                ])
                            ])))
                default:
                    return HTTPResponse(status: 404, body: [])
                }
            })
            box.value = self
        }
        private final class Box: @unchecked Sendable { var value: SecretsExtension? }
    }

    /// Secrets from Secrets Manager and Parameter Store, never in the function's environment: read
    /// at the first invocation through the extension; a refused read fails that invocation naming
    /// the variable, never a value.
    @Test func secretsAreReadThroughTheExtensionAtTheFirstInvocation() throws {
        let storeFolder = "/var/tmp/compass-lambda-tests/secrets-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: storeFolder) }
        let arn = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:compass/meta-app-secret-AbCdEf"
        let extensionServer = try SecretsExtension(
            token: "session-token-1", secrets: [arn: World.appSecret],
            parameters: ["/compass/store-url": "file://\(storeFolder)/store"])
        defer { extensionServer.server.stop() }
        let environment = [
            "META_APP_SECRET_SECRET_ID": arn, "STORE_URL_SECRET_ID": "ssm:/compass/store-url",
            "AWS_SESSION_TOKEN": "session-token-1", "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": String(extensionServer.server.port),
        ]
        let emulator = try LambdaEmulator()
        defer { emulator.server.stop() }
        let function = try LambdaFunction.start(
            "connect", emulator: emulator, environment: environment, removing: ["META_APP_SECRET", "STORE_URL"])
        defer { function.stop() }
        usleep(300_000)
        #expect(emulator.initError == nil && function.process.isRunning, "\(emulator.initError ?? "")")
        extensionServer.invoking.withLock { $0 = true }
        emulator.invoke("k1", Self.httpEvent("GET", "/api/connect/meta", tenant: "tenant_one"))
        emulator.invoke("k2", Self.httpEvent("GET", "/api/connect/meta", tenant: "tenant_two"))
        let outcomes = emulator.outcomes(["k1", "k2"])
        #expect(outcomes["k1"]?.json["statusCode"] as? Int == 302, "\(String(describing: outcomes["k1"]))")
        #expect(outcomes["k2"]?.json["statusCode"] as? Int == 302)
        // Read once for the process, and the states are in the store the parameter names.
        #expect(extensionServer.calls.withLock { $0 } == 2)
        #expect(FileManager.default.fileExists(atPath: storeFolder + "/store"))

        // A token the extension refuses: the first invocation fails naming the variable.
        let refused = try LambdaEmulator()
        defer { refused.server.stop() }
        let other = try LambdaFunction.start(
            "settings", emulator: refused, environment: environment.merging(["AWS_SESSION_TOKEN": "stale"]) { _, new in new },
            removing: ["META_APP_SECRET", "STORE_URL"])
        defer { other.stop() }
        refused.invoke("r1", Self.httpEvent("GET", "/api/connect/meta/settings", tenant: "tenant_one"))
        let failed = refused.outcome("r1")
        #expect(
            failed?.kind == "error" && failed?.json["errorType"] as? String == "Runtime.ConfigurationError", "\(String(describing: failed))"
        )
        #expect(
            (failed?.json["errorMessage"] as? String)?.contains(
                "_SECRET_ID could not be read: the Parameters and Secrets extension answered HTTP 401") == true,
            "\(String(describing: failed))")
        #expect(failed?.body.contains(World.appSecret) == false)
        other.process.waitUntilExit()
        #expect(other.process.terminationStatus == 1)
    }

    @Test func anUnusableConfigurationIsAnInitError() throws {
        let emulator = try LambdaEmulator()
        defer { emulator.server.stop() }
        let function = try LambdaFunction.start("settings", emulator: emulator, store: "file:///tmp/compass-lambda-store")
        function.process.waitUntilExit()
        defer { function.stop() }
        #expect(function.process.terminationStatus == 1)
        #expect(emulator.initError?.contains("STORE_URL") == true, "\(emulator.initError ?? "no init error")")

        let unset = try LambdaEmulator()
        defer { unset.server.stop() }
        let other = try LambdaFunction.start("settings", emulator: unset, environment: ["STORE_URL": ""])
        other.process.waitUntilExit()
        defer { other.stop() }
        #expect(other.process.terminationStatus == 1)
        #expect(unset.initError?.contains("STORE_URL is required on Lambda") == true, "\(unset.initError ?? "no init error")")
    }
}

/// The connect flow with every route its own Lambda function (its own Runtime API, as on AWS),
/// against the Graph sandbox over loopback HTTP: connect, the dialog, callback, settings and an
/// event; and an invocation's deadline cutting off a Graph call that would outlast it.
@Suite(.serialized) struct LambdaFlowTests {
    static let credentialsKey = Data(Crypto.randomBytes(32)).base64EncodedString()

    /// An HTTP API (payload 2.0) event; a body goes base64-encoded, as API Gateway sends binary.
    static func event(
        _ method: String, _ path: String, query: String = "", headers: [String: String] = [:],
        cookies: [String] = [], body: String? = nil
    ) -> String {
        var event: [String: Any] = [
            "version": "2.0", "rawPath": path, "rawQueryString": query,
            "headers": headers.merging(["host": "compass.example"]) { a, _ in a },
            "requestContext": ["http": ["method": method, "sourceIp": "203.0.113.7"]], "isBase64Encoded": body != nil,
        ]
        if !cookies.isEmpty { event["cookies"] = cookies }
        if let body { event["body"] = Data(body.utf8).base64EncodedString() }
        return String(decoding: try! JSONSerialization.data(withJSONObject: event), as: UTF8.self)
    }

    final class Functions {
        let folder = URL(fileURLWithPath: "/var/tmp/compass-lambda-tests/\(UUID().uuidString)")
        let sandbox: GraphSandbox
        let server: LoopbackServer
        var running: [String: (LambdaEmulator, LambdaFunction)] = [:]
        var counter = 0

        init() throws {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            (sandbox, server) = try GraphSandbox.serve(folder: folder.path + "/sandbox")
        }

        func start(_ name: String, environment: [String: String] = [:]) throws {
            let emulator = try LambdaEmulator()
            let function = try LambdaFunction.start(
                name, emulator: emulator,
                environment: [
                    "META_GRAPH_URL": server.baseURL, "META_DIALOG_URL": server.baseURL, "CREDENTIALS_KEY": LambdaFlowTests.credentialsKey,
                ].merging(environment) { _, new in new }, folder: folder)
            running[name] = (emulator, function)
        }

        /// One invocation of `name`, waited for.
        func invoke(_ name: String, _ event: String, seconds: Double = 30) throws -> LambdaEmulator.Outcome {
            counter += 1
            let id = "\(name)-\(counter)"
            let emulator = try #require(running[name]?.0)
            emulator.invoke(id, event, seconds: seconds)
            return try #require(emulator.outcome(id, seconds: seconds + 10), "\(name) gave no answer")
        }

        func stop() {
            for (emulator, function) in running.values {
                function.process.terminate()
                function.process.waitUntilExit()
                emulator.server.stop()
            }
            server.stop()
            try? FileManager.default.removeItem(at: folder)
        }
    }

    @Test func connectCallbackSettingsAndAnEventAsLambdaFunctions() throws {
        let functions = try Functions()
        defer { functions.stop() }
        for name in ["connect", "callback", "settings", "send-event"] { try functions.start(name) }
        let session = "compass_session=" + LambdaFunction.session("tenant_lambda")

        let connect = try functions.invoke("connect", Self.event("GET", "/api/connect/meta", cookies: [session]))
        #expect(connect.kind == "response" && connect.json["statusCode"] as? Int == 302, "\(connect.body)")
        let dialog = try #require((connect.json["headers"] as? [String: String])?["Location"])
        #expect(dialog.hasPrefix(functions.server.baseURL + "/"))
        let approved = try CurlTransport().send(HTTPRequest(method: "GET", url: dialog + "&sandbox_action=approve"))
        let back = try #require(approved.headers["location"])
        #expect(back.hasPrefix("https://compass.example/api/connect/meta/callback?"))
        let query = String(back.split(separator: "?", maxSplits: 1)[1])

        let callback = try functions.invoke("callback", Self.event("GET", "/api/connect/meta/callback", query: query, cookies: [session]))
        #expect(
            (callback.json["headers"] as? [String: String])?["Location"] == "https://compass.example/settings/integrations?connected=meta",
            "\(callback.body)")

        let token = LambdaFunction.session("tenant_lambda")
        let listed = try functions.invoke(
            "settings",
            Self.event(
                "GET", "/api/connect/meta/settings", query: "adAccountId=act_1000001",
                headers: ["authorization": "Bearer " + token]))
        #expect(listed.json["statusCode"] as? Int == 200, "\(listed.body)")
        #expect((listed.json["body"] as? String)?.contains("2000101") == true)
        let saved = try functions.invoke(
            "settings",
            Self.event(
                "PUT", "/api/connect/meta/settings",
                headers: ["origin": "https://compass.example", "content-type": "application/json"],
                cookies: [session], body: #"{"adAccountId":"act_1000001","pixelId":"2000101"}"#))
        #expect(saved.json["statusCode"] as? Int == 200, "\(saved.body)")

        let sent = try functions.invoke(
            "send-event",
            Self.event(
                "POST", "/api/connect/meta/events",
                headers: ["authorization": "Bearer " + token, "content-type": "application/json"],
                body: LighttpdHost.lead("lambda-flow-1")))
        #expect(sent.json["statusCode"] as? Int == 200, "\(sent.body)")
        let delivered = try CurlTransport().send(
            HTTPRequest(method: "GET", url: functions.server.baseURL + "/sandbox/events?pixel=2000101"))
        #expect(String(decoding: delivered.body, as: UTF8.self).contains("lambda-flow-1"))
    }

    @Test func theInvocationDeadlineCutsOffASlowMeta() throws {
        let functions = try Functions()
        defer { functions.stop() }
        // Meta's own timeout is far longer than the invocation: only the deadline can end the call.
        try functions.start("connect")
        try functions.start("callback", environment: ["META_TIMEOUT_MS": "30000"])
        let session = "compass_session=" + LambdaFunction.session("tenant_slow")
        let connect = try functions.invoke("connect", Self.event("GET", "/api/connect/meta", cookies: [session]))
        let dialog = try #require((connect.json["headers"] as? [String: String])?["Location"])
        let approved = try CurlTransport().send(HTTPRequest(method: "GET", url: dialog + "&sandbox_action=approve"))
        let query = String(try #require(approved.headers["location"]).split(separator: "?", maxSplits: 1)[1])
        let fault = GraphSandbox.Fault(kind: .timeout, path: "oauth/access_token", remaining: 1, delayMilliseconds: 20_000)
        _ = functions.sandbox.handle(.init(method: "POST", path: "/sandbox/faults", query: QueryParameters(), body: JSON.encode(fault)))

        let callback = try functions.invoke(
            "callback", Self.event("GET", "/api/connect/meta/callback", query: query, cookies: [session]),
            seconds: 4)
        #expect(
            (callback.json["headers"] as? [String: String])?["Location"]
                == "https://compass.example/settings/integrations?error=meta_exchange_failed", "\(callback.body)")
        // Answered before the deadline (Lambda would have ended the process), not after Meta's 20 s.
        #expect(callback.receivedAt <= callback.deadline, "answered \(callback.receivedAt - callback.deadline) ms after the deadline")
    }
}
