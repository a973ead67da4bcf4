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

        /// `name` on an emulator of its own; its standard output (the metrics lines) in
        /// `<folder>/<name>.stdout`.
        func start(_ name: String, environment: [String: String] = [:]) throws {
            let emulator = try LambdaEmulator()
            let function = try LambdaFunction.start(
                name, emulator: emulator,
                environment: [
                    "META_GRAPH_URL": server.baseURL, "META_DIALOG_URL": server.baseURL, "CREDENTIALS_KEY": LambdaFlowTests.credentialsKey,
                ].merging(environment) { _, new in new }, folder: folder, stdout: folder.path + "/\(name).stdout")
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
        // Answered before the deadline (Lambda would have ended the process), not after Meta's 20 s:
        // the calls end the reserve (250 ms) before it, so the answer comes well ahead; 100 ms is
        // the least this test takes, leaving the rest to a slow machine.
        #expect(
            callback.deadline - callback.receivedAt >= 100,
            "answered \(callback.deadline - callback.receivedAt) ms before the deadline")
    }

    /// The reserve kept back from an invocation's deadline to post the answer, measured directly:
    /// the calls' end is the header's instant less 250 ms.
    @Test func theCallsEndTheReserveBeforeTheInvocationsDeadline() throws {
        let now = Date()
        let header = String(Int64((now.timeIntervalSince1970 * 1000).rounded(.down)) + 3_000)
        let before = monotonicMilliseconds()
        let end = try #require(LambdaHost.deadline(header, now: now))
        let after = monotonicMilliseconds()
        #expect(end >= before + 3_000 - 250 - 1 && end <= after + 3_000 - 250, "\(end - before)")
        #expect(LambdaHost.answerReserveMilliseconds >= 200)
        #expect(LambdaHost.deadline("0", now: now) == nil && LambdaHost.deadline(nil, now: now) == nil)
    }
}
