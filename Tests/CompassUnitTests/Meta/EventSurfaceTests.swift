import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

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
