import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage

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
        // A system user (Login for Business): /me names the client's business.
        world.connectTenant("tenant_b", approve: "&sandbox_token_type=system_user")
        #expect(world.drain().quality.fetched == 1)
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

/// Meta's Dataset Quality answer kept whole, shown in settings, and its degradation told.
@Suite struct QualityAnswerTests {
    private func settings(_ world: World) -> [String: Any] {
        world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings")).json
    }

    @Test func settingsShowsTheWholeAnswerAndADegradationIsToldOnce() throws {
        let world = World(environment: [
            "CRON_SECRET": "cron-secret-0123456789abcdef", "COMPASS_WEBHOOK_URL": "https://compass.example/hooks/meta",
            "COMPASS_WEBHOOK_SECRET": "webhook-secret-0123456789abcdef",
        ])
        world.readyTenant()
        #expect(world.send(world.batch(["q1", "q2"])).status == 200)
        #expect(world.drain().quality.fetched == 1)
        let quality = try #require(settings(world)["eventMatchQuality"] as? [String: Any])
        #expect(quality["fetchedAt"] != nil && quality["lastFailure"] == nil)
        let event = try #require((quality["events"] as? [[String: Any]])?.first)
        #expect(event["eventName"] as? String == "Lead")
        #expect((event["dedupeKeys"] as? [[String: Any]])?.first?["browserCoverage"] as? Double == 82)
        #expect((event["eventCoverage"] as? [String: Any])?["goalPercentage"] as? Double == 75)
        #expect((event["dataFreshness"] as? [String: Any])?["uploadFrequency"] as? String == "real_time")
        #expect((event["additionalConversionsReported"] as? [String: Any])?["percentage"] as? Double == 12.5)
        #expect(event["diagnostics"] is [Any])

        // Browser/server dedupe coverage falls under 50 %: one notice, and not again the day after.
        let lowered = Array(#"{"browserDedupeCoverage":30}"#.utf8)
        #expect(
            world.sandbox.handle(.init(method: "POST", path: "/sandbox/settings", query: QueryParameters(), body: lowered)).status == 200)
        func degradedNotices() -> Int {
            let page = try? world.store.list(prefix: "meta/notice/", after: nil, limit: 100)
            return (page?.entries ?? []).filter { String(decoding: $0.value.value, as: UTF8.self).contains("integration.quality_degraded") }
                .count
        }
        world.transport.intercept.withLock { $0 = { $0.url.hasPrefix("https://compass.example/hooks") ? HTTPResponse(status: 500) : nil } }
        world.clock.advance(DueIndex.period + DueIndex.jitter + 60)
        #expect(world.drain().quality.fetched == 1)
        #expect(degradedNotices() == 1)
        world.clock.advance(DueIndex.period + DueIndex.jitter + 60)
        #expect(world.drain().quality.fetched == 1)
        #expect(degradedNotices() == 1)
    }

    @Test func aScoreThatDropsByOneIsADegradation() {
        func fetch(_ score: Double, dedupe: Double = 90) -> MatchQuality {
            MatchQuality(
                pixelId: "1", fetchedAt: Date(),
                events: [
                    EventQuality(
                        eventName: "Purchase", compositeScore: score, matchKeyCoverage: [:],
                        dedupeKeys: [.init(key: "event_id", browserEventsWithKey: nil, serverEventsWithKey: nil, browserCoverage: dedupe)])
                ])
        }
        #expect(fetch(6.0).degradation(since: fetch(7.0)) == "match_quality_dropped")
        #expect(fetch(6.1).degradation(since: fetch(7.0)) == nil)
        #expect(fetch(7.0, dedupe: 49).degradation(since: fetch(7.0, dedupe: 50)) == "dedupe_coverage_low")
        #expect(fetch(7.0, dedupe: 40).degradation(since: fetch(7.0, dedupe: 45)) == nil)
    }

    /// A fetch Meta refuses keeps the last figures, says why in settings, and is tried an hour on.
    @Test func aRefusedFetchIsShownWithMetasMessage() throws {
        let world = World()
        world.readyTenant()
        world.transport.intercept.withLock {
            $0 = { request in
                guard request.url.contains("/dataset_quality?") else { return nil }
                let body =
                    #"{"error":{"message":"(#100) Tried accessing nonexisting field (web) on node type (X)","type":"OAuthException","code":100}}"#
                return HTTPResponse(status: 400, headers: ["content-type": "application/json"], body: Array(body.utf8))
            }
        }
        #expect(world.drain().quality.failed == 1)
        let quality = try #require(settings(world)["eventMatchQuality"] as? [String: Any])
        let failure = try #require(quality["lastFailure"] as? [String: Any])
        #expect((failure["message"] as? String)?.contains("nonexisting field (web)") == true)
        #expect(quality["fetchedAt"] == nil)
        world.transport.intercept.withLock { $0 = nil }
        world.clock.advance(QualityFetcher.retryDelay + 1)
        #expect(world.drain().quality.fetched == 1)
        #expect((settings(world)["eventMatchQuality"] as? [String: Any])?["lastFailure"] == nil)
    }
}

/// The event surface of Meta's current SDKs, through send-event to the strict sandbox.
@Suite struct EventSurfaceTests {
    private func event(_ fields: String, id: String? = "s1") -> String {
        let time = Int64(1_790_000_000 - 60)  // the test clock's start
        return
            #"{"eventName":"Lead","eventTime":\#(time),"actionSource":"system_generated"\#(id.map { #","eventId":"\#($0)""# } ?? "")\#(fields)}"#
    }

    @Test func anUnknownUserDataKeyIsLeftOutNamedAndTheEventSent() throws {
        let world = World()
        world.readyTenant()
        let response = world.send(event(#","userData":{"em":"jane@example.com","email_address":"jane@example.com"}"#))
        #expect(response.status == 200, "\(response.text)")
        let warnings = (response.json["warnings"] as? [[String: Any]])?.compactMap { $0["message"] as? String } ?? []
        #expect(warnings == ["userData.email_address is not a key Meta knows; it was left out"], "\(response.json)")
        let user = try #require(world.delivered().first?["event"]?["user_data"]?.object)
        #expect(user.keys.sorted() == ["em"])
        #expect(!String(decoding: JSON.encode(world.delivered()), as: UTF8.self).contains("jane@"))
    }

    @Test func parameterBuilderValuesAndDigestsPassOnceAndLookalikesAreRefused() throws {
        let world = World()
        world.readyTenant()
        let digest = UserDataNormalizer.hash("jane@example.com")
        let built = digest.uppercased() + ".AQ"
        let long = digest + ".AQQCAQAA"  // the appendix of version 1.0.0: six bytes, eight characters
        let sent = world.send(event(#","userData":{"em":"\#(built)","external_id":["\#(long)","\#(digest)"]}"#))
        #expect(sent.status == 200, "\(sent.text)")
        let user = try #require(world.delivered().first?["event"]?["user_data"])
        #expect(user["em"] == .string(digest + ".AQ"))
        #expect(user["external_id"] == .array([.string(long), .string(digest)]))
        for bad in [String(digest.prefix(32)) + ".AQ", digest + ".A", digest + ".not-a-suffix"] {
            let refused = world.send(event(#","userData":{"external_id":"\#(bad)"}"#, id: "s-\(bad.count)"))
            #expect(refused.status == 422, "\(bad)")
            let problem = ((refused.json["rejected"] as? [[String: Any]])?.first?["problems"] as? [[String: Any]])?.first
            #expect(problem?["field"] as? String == "userData" && problem?["code"] as? String == "invalid_hash", "\(refused.json)")
        }
    }

    /// Without the caller's eventId, Meta gets no event_id (its fallback deduplication with the
    /// pixel then works); a retry of the same event is still deduplicated here.
    @Test func anEventWithoutAnIdIsSentWithoutOneAndStillDeduplicated() throws {
        let world = World()
        world.readyTenant()
        let body = event(#","userData":{"em":"jane@example.com","fbp":"fb.1.1700000000000.123"}"#, id: nil)
        #expect(world.send(body).status == 200)
        #expect(world.send(body).json["duplicates"] as? Int == 1)
        #expect(world.delivered().count == 1)
        #expect(world.delivered().first?["event"]?["event_id"] == nil)
        // Queued through an outage and drained: still no event_id, still once.
        world.queueFault(.serverError, count: 1)
        let second = event(#","userData":{"em":"john@example.com"}"#, id: nil)
        #expect(world.send(second).status == 202)
        world.clock.advance(120)
        #expect(world.drain().outbox.sent == 1)
        #expect(world.delivered().count == 2 && world.delivered().allSatisfy { $0["event"]?["event_id"] == nil })
    }

    @Test func messagingTakesMetasMessagingEventNamesAndTheSDKsOtherFields() throws {
        let world = World()
        world.readyTenant()
        let messaging =
            #","actionSource":"business_messaging","messagingChannel":"whatsapp","userData":{"ctwa_clid":"ARAk1","whatsapp_business_account_id":"1029384756"}"#
        let refused = world.send(event(messaging).replacingOccurrences(of: #","actionSource":"system_generated""#, with: ""))
        #expect(refused.status == 422 && refused.text.contains("LeadSubmitted"), "\(refused.text)")
        let accepted = world.send(
            event(messaging + #","advancedMeasurementTable":"amt_1","customData":{"netRevenue":9.5,"itemNumber":"n1"}"#)
                .replacingOccurrences(of: #""eventName":"Lead","#, with: #""eventName":"LeadSubmitted","#)
                .replacingOccurrences(of: #","actionSource":"system_generated""#, with: ""))
        #expect(accepted.status == 200, "\(accepted.text)")
        let sent = try #require(world.delivered().first?["event"])
        #expect(sent["advanced_measurement_table"] == .string("amt_1") && sent["custom_data"]?["net_revenue"] == .double(9.5))
        #expect(sent["user_data"]?["whatsapp_business_account_id"] == .string("1029384756"))
    }

    /// A permission error on the pixel's events is the pixel's: it is marked unavailable with
    /// Meta's words and its events wait, while the token (valid by debug_token) stays connected.
    @Test func aPermissionErrorOnSendMarksThePixelNotTheToken() throws {
        let world = World()
        world.readyTenant()
        world.transport.intercept.withLock {
            $0 = { request in
                guard request.url.contains("/2000101/events") else { return nil }
                let body =
                    #"{"error":{"message":"(#200) The user does not have permission to send events to this pixel","type":"OAuthException","code":200}}"#
                return HTTPResponse(status: 403, headers: ["content-type": "application/json"], body: Array(body.utf8))
            }
        }
        #expect(world.send(event(#","userData":{"em":"jane@example.com"}"#)).status == 202)
        #expect(world.integration()?.status == .connected)
        let settings = world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings")).json
        #expect(settings["pixelStatus"] as? String == "unavailable")
        #expect((settings["pixelStatusReason"] as? String)?.contains("permission to send events") == true)
    }

    /// Where Meta names the refused event, the rest goes again in one call, not a bisection.
    @Test func aRefusalNamingItsEventCostsOneMoreCall() throws {
        let world = World()
        world.readyTenant()
        let first = Mutex(true)
        world.transport.intercept.withLock {
            $0 = { request in
                guard request.url.contains("/2000101/events"),
                    first.withLock({
                        let was = $0
                        $0 = false
                        return was
                    })
                else { return nil }
                let body =
                    #"{"error":{"message":"Invalid parameter","type":"OAuthException","code":100,"error_subcode":2804050,"error_user_msg":"Too little customer information","error_data":{"event_index":2}}}"#
                return HTTPResponse(status: 400, headers: ["content-type": "application/json"], body: Array(body.utf8))
            }
        }
        let response = world.send(world.batch((1...6).map { "b\($0)" }))
        #expect(response.status == 207, "\(response.text)")
        #expect((response.json["rejected"] as? [[String: Any]])?.map { $0["eventId"] as? String } == ["b3"])
        #expect(world.transport.requests.withLock { $0.filter { $0.url.contains("/events") }.count } == 2)
        #expect(world.delivered().count == 5)
    }
}
