import Foundation
import Testing

@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// The whole flow with its records in a DynamoDB table (moto's server, an emulator): connect,
/// callback, settings, an event delivered, an outage queued and drained, refresh-cron and
/// disconnect, as CGI behind lighttpd and as Lambda functions on the Runtime API emulator; no
/// item holds a token in the clear.
@Suite(.serialized) struct DynamoDBEndToEndTests {
    /// Every item of the table as DynamoDB answers it (keys and values, values decoded), to look
    /// for a token in the clear.
    static func everyItem(_ store: DynamoDBStore) throws -> [(key: String, text: String)] {
        var items: [(String, String)] = []
        var start: JSONValue? = nil
        repeat {
            var body: [String: JSONValue] = ["TableName": .string(store.table), "ConsistentRead": .bool(true)]
            if let start { body["ExclusiveStartKey"] = start }
            let answer = try store.client.call("Scan", .object(body), deadline: monotonicMilliseconds() + 10_000)
            for item in answer["Items"]?.array ?? [] {
                let value = Base64Bytes.decode(item["v"]?["B"]?.string ?? "") ?? []
                items.append((item["sk"]?["S"]?.string ?? "", String(decoding: item.serialized + value, as: UTF8.self)))
            }
            start = answer["LastEvaluatedKey"]
        } while start?.object?.isEmpty == false
        return items
    }

    /// Items holding a sandbox token (`EAAS...`) in the clear.
    static func leaks(_ store: DynamoDBStore) throws -> [String] {
        try everyItem(store).filter { $0.text.contains("EAAS") }.map(\.key)
    }

    @Test func theWholeFlowThroughLighttpdOnDynamoDB() throws {
        let moto = try #require(MotoServer.shared, "moto could not be started")
        let (url, store) = try moto.store()
        let host = try LighttpdHost(extra: MotoServer.environment.merging(["STORE_URL": url]) { $1 })
        let bearer = try host.readyTenant("tenant_ddb")
        let settings = try host.send("GET", "/api/connect/meta/settings", headers: bearer)
        #expect(
            settings.status == 200 && String(decoding: settings.body, as: UTF8.self).contains(#""pixelId":"2000101""#),
            "\(String(decoding: settings.body, as: UTF8.self)) \(host.log.suffix(1500))")
        #expect(try host.events(bearer, LighttpdHost.lead("ddb-flow-1")).status == 200)
        #expect(try host.deliveredIds().contains("ddb-flow-1"))

        // Meta down: the events are queued in the table, and refresh-cron's drain delivers them.
        try host.fault("server_error", path: "2000101/events", remaining: 1)
        let queued = try host.events(bearer, LighttpdHost.batch(["ddb-out-1", "ddb-out-2"]))
        #expect(queued.status == 202 && queued.json["queued"] as? Int == 2, "\(queued.json)")
        #expect(try store.count(prefix: "meta/outbox/tenant_ddb/") == 2)
        let cron = [("Authorization", "Bearer cron-secret-for-tests-0123456789")]
        let run = try host.send("POST", "/api/cron/meta/refresh", headers: cron)
        let delivered = try host.deliveredIds()
        #expect(
            run.status == 200 && delivered.contains("ddb-out-1") && delivered.contains("ddb-out-2"),
            "\(String(decoding: run.body, as: UTF8.self)) \(delivered)")
        #expect(try store.count(prefix: "meta/outbox/tenant_ddb/") == 0)

        #expect(try store.get("meta/credential/tenant_ddb") != nil)
        #expect(try Self.leaks(store).isEmpty)
        let cookie = [("Cookie", "compass_session=" + String(bearer[0].1.dropFirst("Bearer ".count))), ("Origin", host.base)]
        #expect(try host.send("POST", "/api/connect/meta/disconnect", headers: cookie).status == 200)
        #expect(try host.send("GET", "/api/connect/meta/settings", headers: bearer).status == 404)
        #expect(try store.get("meta/credential/tenant_ddb") == nil)
    }

    @Test func theWholeFlowAsLambdaFunctionsOnDynamoDB() throws {
        let moto = try #require(MotoServer.shared, "moto could not be started")
        let (url, store) = try moto.store()
        let functions = try LambdaFlowTests.Functions()
        defer { functions.stop() }
        let environment = MotoServer.environment.merging(["STORE_URL": url, "AWS_REGION": "eu-west-1"]) { $1 }
        for name in ["connect", "callback", "settings", "send-event", "refresh-cron", "disconnect"] {
            try functions.start(name, environment: environment)
        }
        let session = "compass_session=" + LambdaFunction.session("tenant_ddb_lambda")
        let bearer = ["authorization": "Bearer " + LambdaFunction.session("tenant_ddb_lambda"), "content-type": "application/json"]
        let connect = try functions.invoke("connect", LambdaFlowTests.event("GET", "/api/connect/meta", cookies: [session]))
        let dialog = try #require((connect.json["headers"] as? [String: String])?["Location"], "\(connect.body)")
        let approved = try CurlTransport().send(HTTPRequest(method: "GET", url: dialog + "&sandbox_action=approve"))
        let query = String(try #require(approved.headers["location"]).split(separator: "?", maxSplits: 1)[1])
        let callback = try functions.invoke(
            "callback", LambdaFlowTests.event("GET", "/api/connect/meta/callback", query: query, cookies: [session]))
        #expect(callback.json["statusCode"] as? Int == 302, "\(callback.body)")
        let saved = try functions.invoke(
            "settings",
            LambdaFlowTests.event(
                "PUT", "/api/connect/meta/settings", headers: ["origin": "https://compass.example", "content-type": "application/json"],
                cookies: [session], body: #"{"adAccountId":"act_1000001","pixelId":"2000101"}"#))
        #expect(saved.json["statusCode"] as? Int == 200, "\(saved.body)")

        func send(_ body: String) throws -> Int? {
            let sent = try functions.invoke(
                "send-event", LambdaFlowTests.event("POST", "/api/connect/meta/events", headers: bearer, body: body))
            return sent.json["statusCode"] as? Int
        }
        func delivered() throws -> String {
            let answer = try CurlTransport().send(
                HTTPRequest(method: "GET", url: functions.server.baseURL + "/sandbox/events?pixel=2000101"))
            return String(decoding: answer.body, as: UTF8.self)
        }
        #expect(try send(LighttpdHost.lead("ddb-lambda-1")) == 200)
        #expect(try delivered().contains("ddb-lambda-1"))
        _ = try CurlTransport().send(
            HTTPRequest(
                method: "POST", url: functions.server.baseURL + "/sandbox/faults",
                body: Array(#"{"kind":"server_error","path":"2000101/events","remaining":1}"#.utf8)))
        #expect(try send(LighttpdHost.lead("ddb-lambda-2")) == 202)
        #expect(try store.count(prefix: "meta/outbox/tenant_ddb_lambda/") == 1)
        let cron = try functions.invoke(
            "refresh-cron", #"{"version":"0","source":"aws.events","detail-type":"Scheduled Event","detail":{}}"#)
        #expect(cron.kind == "response", "\(cron.body)")
        #expect(try delivered().contains("ddb-lambda-2"), "\(cron.body)")
        #expect(try store.count(prefix: "meta/outbox/tenant_ddb_lambda/") == 0)
        #expect(try Self.leaks(store).isEmpty)

        let gone = try functions.invoke(
            "disconnect",
            LambdaFlowTests.event(
                "POST", "/api/connect/meta/disconnect", headers: ["origin": "https://compass.example"], cookies: [session]))
        #expect(gone.json["statusCode"] as? Int == 200, "\(gone.body)")
        #expect(try store.get("meta/credential/tenant_ddb_lambda") == nil)
    }
}
