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

/// Issue 15 through the host: Facebook Login for Business with a system-user token, Meta's
/// whole event, a pixel Meta cannot reach, shared pixels and Meta's match quality, each through
/// the executables behind lighttpd against the Graph sandbox.
@Suite(.serialized) struct MetaSurfaceEndToEndTests {
    @Test func loginForBusinessAndTheWholeEventThroughTheHost() throws {
        let host = try LighttpdHost(extra: ["META_LOGIN_CONFIG_ID": "1234567890123", "META_PARTNER_AGENT": "compass-e2e_1_2"])
        let cookie = try host.login("tenant_bisu")
        let session = [("Cookie", cookie)]
        let connect = try host.send("GET", "/api/connect/meta", headers: session)
        let dialog = connect.headers["location"] ?? ""
        #expect(dialog.contains("config_id=1234567890123") && !dialog.contains("scope="))
        let approved = try host.send("GET", dialog + "&sandbox_action=approve&sandbox_token_type=system_user")
        let callback = try host.send("GET", approved.headers["location"] ?? "", headers: session)
        #expect((callback.headers["location"] ?? "").hasSuffix("?connected=meta"))
        let browser = session + [("Origin", host.base)]

        // The pixel picker offers the shared pixel; choosing it makes its quality due.
        let pixels = String(
            decoding: try host.send("GET", "/api/connect/meta/settings?adAccountId=act_1000001", headers: session).body, as: UTF8.self)
        #expect(pixels.contains(#""id":"3000902""#) && pixels.contains(#""source":"shared""#))
        #expect(
            try host.send(
                "PUT", "/api/connect/meta/settings", headers: browser,
                body: #"{"adAccountId":"act_1000001","pixelId":"3000902"}"#
            ).status == 200)

        // Meta's own event shape and the rest of the event, with every problem of a bad one.
        let bearer = [
            ("Authorization", "Bearer " + String(cookie.dropFirst("compass_session=".count))), ("Content-Type", "application/json"),
        ]
        let now = Date().unixSeconds - 60
        let messaging =
            #"{"event_name":"LeadSubmitted","event_time":\#(now),"action_source":"business_messaging","messaging_channel":"whatsapp","event_id":"wa-1","user_data":{"ph":"+1 (650) 555-1212 ext","f5first":"Christopher","zp":"94025 1234","lead_id":1234567890123},"data_processing_options":["LDU"],"data_processing_options_country":1,"data_processing_options_state":1000}"#
        let bad = #"{"eventName":"","eventTime":\#(now),"actionSource":"app","userData":{"em":"a@b.co"}}"#
        let sent = try host.events(bearer, #"{"events":[\#(messaging),\#(bad)]}"#)
        #expect(sent.status == 207, "\(sent.json)")
        let problems = ((sent.json["rejected"] as? [[String: Any]])?.first?["problems"] as? [[String: Any]])?.compactMap {
            $0["field"] as? String
        }
        #expect(problems == ["eventName", "appData"])
        let stored = String(decoding: try host.send("GET", "/graph/sandbox/events?pixel=3000902").body, as: UTF8.self)
        #expect(stored.contains(#""messaging_channel":"whatsapp""#) && stored.contains(#""data_processing_options_state":1000"#))
        #expect(stored.contains(#""partner_agent":"compass-e2e_1_2""#))
        #expect(stored.contains(UserDataNormalizer.hash("16505551212")) && stored.contains(UserDataNormalizer.hash("94025")))

        // A pixel Meta cannot reach (now and at the cron's retry): queued, and settings says so.
        try host.fault("object_unavailable", path: "3000902/events", remaining: 2)
        #expect(try host.events(bearer, LighttpdHost.lead("wait-1")).status == 202)

        // refresh-cron as cron runs it: the system user's token is checked, not renewed, and
        // Meta's match quality is fetched for the chosen pixel.
        let cron = try host.runCronDirectly()
        #expect((cron["tokens"] as? [String: Any])?["renewed"] as? Int == 0, "\(cron)")
        #expect((cron["quality"] as? [String: Any])?["fetched"] as? Int == 1, "\(cron)")
        let settings =
            (try JSONSerialization.jsonObject(with: Data(try host.send("GET", "/api/connect/meta/settings", headers: session).body)))
            as? [String: Any] ?? [:]
        #expect(settings["tokenType"] as? String == "system_user" && settings["clientBusinessId"] as? String == "3000001")
        #expect(settings["pixelStatus"] as? String == "unavailable")
        let quality = (settings["eventMatchQuality"] as? [String: Any])?["events"] as? [[String: Any]]
        #expect(quality?.first?["eventName"] as? String == "LeadSubmitted", "\(settings)")
    }
}
