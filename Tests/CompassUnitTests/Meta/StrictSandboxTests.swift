import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// The Graph sandbox refuses what Meta refuses: every field, parameter and event key is checked
/// against Meta's own names (`MetaGraphSchema`, generated from Meta's SDK sources).
@Suite struct StrictSandboxTests {
    private func call(_ world: World, _ method: String, _ route: String, _ query: String, token: String, body: String = "") -> HTTPResponse
    {
        let proof = GraphClient.appsecretProof(token: token, appSecret: World.appSecret)
        let parameters = QueryParameters(parsing: query + (query.isEmpty ? "" : "&") + "access_token=\(token)&appsecret_proof=\(proof)")
        return world.sandbox.handle(.init(method: method, path: "/v25.0/" + route, query: parameters, body: Array(body.utf8)))
    }

    @Test func theSandboxRefusesANameMetaDoesNotHave() throws {
        let world = World()
        world.connectTenant()
        let token = try world.storedToken()
        func refusal(_ response: HTTPResponse) -> String? {
            guard response.status == 400, let error = GraphAPIError.decode(from: response.body), error.code == 100 else { return nil }
            return error.message
        }
        // The spelling the quality fetch once had: Meta's field is dedupe_key_feedback.
        let misspelt = call(
            world, "GET", "dataset_quality", "dataset_id=2000101&agent_name=compass&fields=web{event_name,dedup_key_feedback}", token: token
        )
        #expect(
            refusal(misspelt)
                == "(#100) Tried accessing nonexisting field (dedup_key_feedback) on node type (AdsPixelCAPIIntegrationQuality)")
        let nested = call(
            world, "GET", "dataset_quality", "dataset_id=2000101&agent_name=compass&fields=web{event_match_quality{composite_score,score}}",
            token: token)
        #expect(refusal(nested)?.contains("nonexisting field (score)") == true)
        #expect(refusal(call(world, "GET", "me", "fields=id,nickname", token: token))?.contains("(nickname) on node type (User)") == true)
        #expect(
            refusal(call(world, "GET", "act_1000001", "fields=id,business{id,colour}", token: token))?.contains(
                "(colour) on node type (Business)") == true)
        #expect(
            refusal(call(world, "GET", "me/adaccounts", "fields=id&order=asc", token: token))
                == "(#100) Param order is not a valid parameter")
        let event =
            #"{"data":[{"event_name":"Lead","event_time":\#(world.clock.now.unixSeconds),"action_source":"email","user_data":{"em":"\#(UserDataNormalizer.hash("a@b.co"))","email":"x"}}]}"#
        #expect(
            refusal(call(world, "POST", "2000101/events", "", token: token, body: event))?.contains("data[0][user_data][email]") == true)
        // What Meta has passes.
        #expect(call(world, "GET", "me", "fields=id,name,client_business_id", token: token).status == 200)
        #expect(
            call(
                world, "GET", "dataset_quality", "dataset_id=2000101&agent_name=compass&fields=\(GraphClient.datasetQualityFields)",
                token: token
            ).status == 200)
    }

    /// Every Graph call the connector makes, through every route and refresh-cron's jobs, is one
    /// the strict sandbox answers: none is refused as naming what Meta does not have.
    @Test func everyGraphCallTheConnectorMakesIsOneMetaKnows() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef", "META_LOGIN_CONFIG_ID": "123456789012345"])
        world.readyTenant()
        #expect(world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings?adAccountId=act_1000001")).status == 200)
        #expect(world.send(world.batch(["w1", "w2"])).status == 200)
        // A store's sales to an offline dataset: its quality comes from Meta's offline figures.
        let route = #"{"datasets":{"physical_store":"\#(SandboxData.offlineDataset)"}}"#
        #expect(world.run(SettingsHandler.self, world.request("PUT", "/api/connect/meta/settings", body: route)).status == 200)
        let sale =
            #"{"eventName":"Purchase","eventTime":\#(world.clock.now.unixSeconds - 60),"actionSource":"physical_store","#
            + #""eventId":"s1","userData":{"em":"a@b.co"},"customData":{"value":1,"currency":"EUR"}}"#
        #expect(world.send(sale).status == 200)
        // A system user (Login for Business): /me names the client's business.
        world.connectTenant("tenant_b", approve: "&sandbox_token_type=system_user")
        #expect(world.drain().quality.fetched == 2)
        // The sandbox keeps its call log a day: read before the clock moves on.
        func log() throws -> [JSONValue] {
            let answer = world.sandbox.handle(.init(method: "GET", path: "/sandbox/calls", query: QueryParameters()))
            return try #require(try JSONParser.parse(answer.body)["calls"]?.array)
        }
        var calls = try log()
        // The long-lived token comes due for renewal: debug_token and the exchange.
        world.clock.advance(55 * 86_400)
        #expect(world.drain().tokens.renewed >= 1)
        #expect(world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect")).status == 200)
        calls += try log()
        let refused = calls.filter { ($0["status"]?.integer ?? 0) >= 400 }
        #expect(refused.isEmpty, "\(refused)")
        let shapes = Set(
            calls.compactMap { call -> String? in
                guard let method = call["method"]?.string, let path = call["path"]?.string else { return nil }
                let parts = path.split(separator: "/").map { part in
                    part.hasPrefix("act_") ? "act_X" : part.allSatisfy(\.isNumber) ? "ID" : String(part)
                }
                return method + " " + parts.joined(separator: "/")
            })
        let expected: Set<String> = [
            "GET dialog/oauth", "GET oauth/access_token", "GET debug_token", "GET me", "GET me/adaccounts", "GET act_X/adspixels",
            "GET ID/owned_pixels", "GET ID/client_pixels", "POST ID/events", "GET dataset_quality", "DELETE me/permissions",
        ]
        #expect(expected.subtracting(shapes).isEmpty, "not walked: \(expected.subtracting(shapes))")
    }

    /// The table names where it came from, and the product's event surface is Meta's.
    @Test func theTableNamesItsSourceAndTheEventTakesEveryNameOfIt() throws {
        let schema = MetaGraphSchema.shared
        #expect(schema.sources["objects_and_edges"]?["commit"]?.string?.count == 40)
        #expect(schema.sources["server_event"]?["commit"]?.string?.count == 40)
        #expect(schema.objects["AdsPixelCAPIIntegrationQuality"]?["dedupe_key_feedback"] != nil)
        #expect(schema.objects["AdsPixelCAPIIntegrationQuality"]?["dedup_key_feedback"] == nil)
        let known = UserDataNormalizer.hashedKeys.union(UserDataNormalizer.plainKeys)
        #expect(try #require(schema.serverEvent["user_data"]) == known)
    }
}
