@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The Lambda Runtime API (2018-06-01) as AWS documents it, on loopback: invocations handed out
/// one at a time, their responses and errors written down.
final class LambdaEmulator: @unchecked Sendable {
    struct Outcome: Equatable {
        var kind: String
        var body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        static func == (a: Outcome, b: Outcome) -> Bool { a.kind == b.kind && a.body == b.body }
    }
    /// Shared with the server's threads, which may outlive the emulator (a long poll pending).
    final class State: Sendable {
        let value = Mutex((queue: [(id: String, event: String)](), outcomes: [String: Outcome](), initError: String?.none))
        func withLock<T>(_ body: (inout (queue: [(id: String, event: String)], outcomes: [String: Outcome], initError: String?)) -> T) -> T {
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
                        return HTTPResponse(status: 200, headers: [
                            "Lambda-Runtime-Aws-Request-Id": next.id,
                            "Lambda-Runtime-Deadline-Ms": String(Int64(Date().timeIntervalSince1970 * 1000) + 30_000),
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
                state.withLock { $0.outcomes[String(parts[0])] = Outcome(kind: String(parts[1]), body: text) }
                return HTTPResponse(status: 202, body: Array("{}".utf8))
            }
            return HTTPResponse(status: 404, body: [])
        }
    }

    var address: String { "127.0.0.1:\(server.port)" }
    func invoke(_ id: String, _ event: String) { state.withLock { $0.queue.append((id, event)) } }
    var initError: String? { state.withLock { $0.initError } }

    /// The outcome of each invocation, once all have one (or the wait ends).
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

    static func start(_ name: String, emulator: LambdaEmulator, store: String? = nil) throws -> LambdaFunction {
        // Not under /tmp (where a clone may live too): a Lambda host refuses a file store there.
        let folder = URL(fileURLWithPath: "/var/tmp/compass-lambda-tests/\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = Executables.url(name)
        process.environment = [
            "AWS_LAMBDA_RUNTIME_API": emulator.address, "SWIFT_BACKTRACE": "enable=no",
            "META_APP_ID": World.appId, "META_APP_SECRET": World.appSecret, "META_GRAPH_URL": "http://127.0.0.1:9/graph",
            "META_DIALOG_URL": "https://www.facebook.com", "OAUTH_REDIRECT_BASE_URL": "https://compass.example",
            "COMPASS_JWT_SECRET": jwtSecret, "CREDENTIALS_KEY": Data(Crypto.randomBytes(32)).base64EncodedString(),
            "CRON_SECRET": "cron-secret-0123456789abcdef", "STORE_URL": store ?? "file://\(folder.path)/store", "LOG_LEVEL": "error",
        ]
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
        let event = #"{"version":"2.0","rawPath":"/api/connect/meta/events","rawQueryString":"dryRun=1","cookies":["a=1","compass_session=xyz"],"headers":{"content-type":"application/json","x-forwarded-for":"203.0.113.9"},"requestContext":{"http":{"method":"POST","sourceIp":"203.0.113.9"}},"body":"eyJhIjoxfQ==","isBase64Encoded":true}"#
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
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(LambdaEvent.response(response, shape: .httpV2, isHead: false))) as? [String: Any])
        #expect(answer["statusCode"] as? Int == 302)
        #expect((answer["headers"] as? [String: String])?["Location"] == "https://www.facebook.com/v26.0/dialog/oauth?x=1")
        #expect(answer["cookies"] as? [String] == ["a=b; Path=/"])
        let binary = CGIResponse(status: 200, headers: [("Content-Type", "image/png")], body: [0, 255])
        let encoded = try #require(try JSONSerialization.jsonObject(with: Data(LambdaEvent.response(binary, shape: .httpV2, isHead: false))) as? [String: Any])
        #expect(encoded["isBase64Encoded"] as? Bool == true && encoded["body"] as? String == "AP8=")
    }

    @Test func restAndLoadBalancerEventsSchedulesAndTheRest() throws {
        let rest = #"{"httpMethod":"GET","path":"/api/connect/meta/settings","multiValueHeaders":{"Cookie":["compass_session=abc"]},"multiValueQueryStringParameters":{"adAccountId":["act_1"]},"requestContext":{"identity":{"sourceIp":"198.51.100.1"}},"body":null,"isBase64Encoded":false}"#
        guard case .http(let environment, _, let shape) = LambdaEvent.parse(Array(rest.utf8)) else {
            Issue.record("not an HTTP event")
            return
        }
        #expect(shape == .restV1(multiValue: true) && environment["HTTP_COOKIE"] == "compass_session=abc")
        #expect(environment["QUERY_STRING"] == "adAccountId=act_1" && environment["REMOTE_ADDR"] == "198.51.100.1")
        let multi = try #require(try JSONSerialization.jsonObject(with: Data(LambdaEvent.response(.json(200, ["ok": true]), shape: shape, isHead: false))) as? [String: Any])
        #expect((multi["multiValueHeaders"] as? [String: [String]])?["Content-Type"] == ["application/json; charset=utf-8"])
        let alb = #"{"httpMethod":"GET","path":"/","headers":{"host":"x"},"requestContext":{"elb":{"targetGroupArn":"arn"}},"body":"","isBase64Encoded":false}"#
        guard case .http(_, _, let albShape) = LambdaEvent.parse(Array(alb.utf8)) else {
            Issue.record("not an HTTP event")
            return
        }
        #expect(albShape == .loadBalancer(multiValue: false))
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
        return #"{"version":"2.0","rawPath":"\#(path)","rawQueryString":"\#(query)"\#(cookies),"headers":{"host":"lambda.example"},"requestContext":{"http":{"method":"\#(method)","sourceIp":"203.0.113.7"}},"isBase64Encoded":false}"#
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
        let outcomes = emulator.outcomes(["a1", "a2", "a3", "a4", "a5"])
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

    @Test func anUnusableConfigurationIsAnInitError() throws {
        let emulator = try LambdaEmulator()
        defer { emulator.server.stop() }
        let function = try LambdaFunction.start("settings", emulator: emulator, store: "file:///tmp/compass-lambda-store")
        function.process.waitUntilExit()
        defer { function.stop() }
        #expect(function.process.terminationStatus == 1)
        #expect(emulator.initError?.contains("STORE_URL") == true, "\(emulator.initError ?? "no init error")")
    }
}
