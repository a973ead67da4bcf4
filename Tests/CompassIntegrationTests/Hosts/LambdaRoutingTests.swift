import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassPlatform
@testable import CompassTestSupport

/// Each function answers only its own routes on Lambda, as under CGI: behind a function URL or
/// an API Gateway catch-all route any path reaches it. AWS's own sample events
/// (Fixtures/lambda-events, from aws/aws-lambda-go) as they are (their paths are no route: 404
/// in the event's own shape), pointed at each of the function's routes (served: never 404, and
/// 405 for a method it does not take), below a route (404) and at other functions' routes (404).
@Suite(.serialized) struct LambdaRoutingTests {
    static let fixtures = [
        "apigw-v2-request-no-authorizer.json", "apigw-request.json", "lambda-urls-request.json",
        "alb-lambda-target-request-multivalue-headers.json", "alb-lambda-target-request-headers-only.json",
    ]

    static func fixture(_ name: String) throws -> [String: Any] {
        let url = FunctionsManifestTests.root.appendingPathComponent("Fixtures/lambda-events/" + name)
        return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    /// The event with its path set to `path`, wherever its shape keeps it.
    static func pointed(_ event: [String: Any], at path: String) -> String {
        var event = event
        if event["version"] as? String == "2.0" {
            event["rawPath"] = path
            if var context = event["requestContext"] as? [String: Any], var http = context["http"] as? [String: Any] {
                http["path"] = path
                context["http"] = http
                event["requestContext"] = context
            }
        } else {
            event["path"] = path
        }
        return String(decoding: try! JSONSerialization.data(withJSONObject: event), as: UTF8.self)
    }

    static func method(of event: [String: Any]) -> String {
        (event["httpMethod"] as? String) ?? (((event["requestContext"] as? [String: Any])?["http"] as? [String: Any])?["method"] as? String)
            ?? "GET"
    }

    @Test func eachFunctionAnswersOnlyItsOwnRoutesInTheEventsOwnShape() throws {
        let manifest = try FunctionsManifest.load(path: FunctionsManifestTests.root.appendingPathComponent("functions.json").path)
        let functions = manifest.served(sandbox: false)
        let allRoutes = functions.flatMap(\.paths)
        for function in functions {
            let emulator = try LambdaEmulator()
            let process = try LambdaFunction.start(function.name, emulator: emulator)
            defer {
                process.stop()
                emulator.server.stop()
            }
            // id -> (what was asked, the status it must or must not have)
            var expected: [String: (asked: String, status: Int?, shape: String)] = [:]
            for name in Self.fixtures {
                let event = try Self.fixture(name)
                let method = Self.method(of: event)
                func ask(_ path: String?, status: Int?) {
                    let id = "\(expected.count)"
                    emulator.invoke(
                        id,
                        path.map { Self.pointed(event, at: $0) }
                            ?? String(decoding: try! JSONSerialization.data(withJSONObject: event), as: UTF8.self))
                    expected[id] = ("\(name) \(method) \(path ?? "as is")", status, name)
                }
                ask(nil, status: 404)
                for route in function.paths {
                    ask(
                        route,
                        status: function.methods.contains(method) || (method == "HEAD" && function.methods.contains("GET")) ? nil : 405)
                    ask(route + "/extra", status: 404)
                }
                for route in allRoutes where !function.paths.contains(route) && name.hasPrefix("apigw-v2") { ask(route, status: 404) }
            }
            let outcomes = emulator.outcomes(Array(expected.keys), seconds: 60)
            for (id, want) in expected {
                let outcome = try #require(outcomes[id], "\(function.name): \(want.asked) had no answer")
                let status = outcome.json["statusCode"] as? Int
                if let status = want.status {
                    #expect(outcome.json["statusCode"] as? Int == status, "\(function.name): \(want.asked) -> \(outcome.body.prefix(200))")
                } else {
                    #expect(status != nil && status != 404, "\(function.name): \(want.asked) -> \(outcome.body.prefix(200))")
                }
                // The answer in the event's own shape.
                if want.shape.hasPrefix("alb") { #expect(outcome.json["statusDescription"] is String, "\(want.asked)") }
                if want.shape == "apigw-request.json" || want.shape.contains("multivalue") {
                    #expect(outcome.json["multiValueHeaders"] is [String: Any], "\(want.asked)")
                } else {
                    #expect(outcome.json["headers"] is [String: Any], "\(want.asked)")
                }
            }
        }
    }

    /// The routes a handler declares are its function's in functions.json: one list, held equal.
    @Test func eachHandlerDeclaresItsFunctionsPaths() throws {
        let manifest = try FunctionsManifest.load(path: FunctionsManifestTests.root.appendingPathComponent("functions.json").path)
        let handlers: [any Handler.Type] = [
            ConnectHandler.self, CallbackHandler.self, DisconnectHandler.self, SettingsHandler.self, SendEventHandler.self,
            RefreshCronHandler.self, MetaWebhooksHandler.self, MetricsHandler.self,
        ]
        #expect(Set(handlers.map { $0.name }) == Set(manifest.served(sandbox: false).map(\.name)))
        for handler in handlers {
            let function = try #require(manifest.functions.first { $0.name == handler.name })
            #expect(handler.paths == function.paths && handler.methods == function.methods, "\(handler.name)")
        }
    }

    /// An HTTP API stage other than `$default` leads its `rawPath`; the route is what follows.
    @Test func aNamedStageIsNotPartOfTheRoute() {
        #expect(LambdaEvent.withoutStage("/prod/api/connect/meta", stage: "prod") == "/api/connect/meta")
        #expect(LambdaEvent.withoutStage("/api/connect/meta", stage: "$default") == "/api/connect/meta")
        #expect(LambdaEvent.withoutStage("/production/x", stage: "prod") == "/production/x")
        #expect(LambdaEvent.withoutStage("/prod", stage: "prod") == "/")
        let mounted = LambdaEvent.mounted(
            ["REQUEST_URI": "/api/connect/meta/events/%72eplay?x=1"], at: ["/api/connect/meta/events", "/api/connect/meta/events/replay"],
            subpaths: false)
        #expect(mounted?["SCRIPT_NAME"] == "/api/connect/meta/events/replay" && mounted?["PATH_INFO"] == "")
        #expect(LambdaEvent.mounted(["REQUEST_URI": "/graph/v26.0/me"], at: ["/graph"], subpaths: true)?["PATH_INFO"] == "/v26.0/me")
        #expect(LambdaEvent.mounted(["REQUEST_URI": "/graphs"], at: ["/graph"], subpaths: true) == nil)
    }
}
