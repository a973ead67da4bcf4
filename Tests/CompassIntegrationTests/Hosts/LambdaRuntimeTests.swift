import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

#if canImport(Glibc)
    import Glibc
#endif

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
        // What the store the parameter names holds: tenant_one declined a permission, so its
        // connect asks again (auth_type=rerequest), which no other store would say.
        try FileStore(root: storeFolder + "/store").put(
            RecordKey.integration("tenant_one"), Array(#"{"missingScopes":["business_management"]}"#.utf8))
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
        // Read once for the process, and the store read is the one the parameter names.
        #expect(extensionServer.calls.withLock { $0 } == 2)
        let location = { (key: String) in (outcomes[key]?.json["headers"] as? [String: String])?["Location"] ?? "" }
        #expect(location("k1").contains("auth_type=rerequest"), "\(location("k1"))")
        #expect(!location("k2").contains("auth_type=rerequest"), "\(location("k2"))")

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
