import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// Security review finding 3: a cookie-authenticated POST sent as text/plain with `Origin: null`
/// and no `Sec-Fetch-Site` delivered a forged Purchase. Through the built executables.
@Suite struct CrossSiteTests {
    static let purchase =
        #"{"eventName":"Purchase","eventTime":\#(Date().unixSeconds - 60),"actionSource":"system_generated","eventId":"forged-1","userData":{"external_id":"x"},"customData":{"value":99999,"currency":"USD"}}"#

    @Test func aForgedCookiePostIsRefusedAndNothingIsSent() throws {
        let world = try CGIWorld.connected()
        let forgeries: [[String: String?]] = [
            // The finding: a form-shaped text/plain body, Origin null, no Sec-Fetch-Site.
            ["CONTENT_TYPE": "text/plain", "HTTP_ORIGIN": "null"],
            ["CONTENT_TYPE": "application/json", "HTTP_ORIGIN": "null"],
            // Neither header: an old browser or a stripped request.
            ["CONTENT_TYPE": "application/json"],
            ["CONTENT_TYPE": "application/json", "HTTP_SEC_FETCH_SITE": "same-site"],
            ["CONTENT_TYPE": "application/json", "HTTP_ORIGIN": "https://compass.example.evil.test"],
        ]
        for forgery in forgeries {
            let answer = try world.run(
                "send-event", "POST", "/api/connect/meta/events", cookie: true, body: Self.purchase,
                environment: forgery)
            #expect([403, 415].contains(answer.status), "\(forgery): \(answer.raw.prefix(200))")
        }
        for route in [("disconnect", "/api/connect/meta/disconnect"), ("send-event", "/api/connect/meta/events/replay")] {
            let answer = try world.run(route.0, "POST", route.1, cookie: true, environment: ["HTTP_ORIGIN": "null"])
            #expect(answer.status == 403 && answer.errorCode == "cross_site_request", "\(route.1)")
        }
        #expect(try world.deliveredEventIds().isEmpty, "a forged event reached Meta")
        // Compass's own pages: Origin equal to Compass's, or Sec-Fetch-Site: same-origin.
        let own = try world.run(
            "send-event", "POST", "/api/connect/meta/events", cookie: true, body: Self.purchase,
            environment: ["HTTP_ORIGIN": World.base])
        #expect(own.status == 200, "\(own.raw.prefix(300))")
        let fetched = try world.run(
            "settings", "PUT", "/api/connect/meta/settings", cookie: true, body: #"{"testEventCode":null}"#,
            environment: ["HTTP_SEC_FETCH_SITE": "same-origin"])
        #expect(fetched.status == 200, "\(fetched.raw.prefix(300))")
    }

    /// The same rule for a cookie PUT to settings: a forged one (Origin null, no Origin and no
    /// Sec-Fetch-Site, or a foreign Origin) is 403 and the tenant's pixel stays as it was.
    @Test func aForgedCookiePutToSettingsIsRefusedAndThePixelUnchanged() throws {
        let world = try CGIWorld.connected()
        let forgeries: [[String: String?]] = [
            ["CONTENT_TYPE": "application/json", "HTTP_ORIGIN": "null"],
            ["CONTENT_TYPE": "application/json"],
            ["CONTENT_TYPE": "application/json", "HTTP_ORIGIN": "https://attacker.example"],
            ["CONTENT_TYPE": "application/json", "HTTP_ORIGIN": "https://compass.example.evil.test", "HTTP_SEC_FETCH_SITE": "cross-site"],
        ]
        for forgery in forgeries {
            let answer = try world.run(
                "settings", "PUT", "/api/connect/meta/settings", cookie: true, body: #"{"adAccountId":"act_1000001","pixelId":"2000102"}"#,
                environment: forgery)
            #expect(answer.status == 403 && answer.errorCode == "cross_site_request", "\(forgery): \(answer.raw.prefix(200))")
        }
        let settings = try world.run("settings", "GET", "/api/connect/meta/settings")
        #expect(settings.status == 200 && settings.raw.contains(#""pixelId":"2000101""#), "\(settings.raw.prefix(400))")
        #expect(!settings.raw.contains("2000102"))
    }

    @Test func aJSONRouteRefusesAnyOtherBodyType() throws {
        let world = try CGIWorld.connected()
        for type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", nil] {
            let answer = try world.run(
                "send-event", "POST", "/api/connect/meta/events", body: Self.purchase,
                environment: ["CONTENT_TYPE": type])
            #expect(answer.status == 415 && answer.errorCode == "unsupported_media_type", "\(type ?? "none")")
        }
        let charset = try world.run(
            "send-event", "POST", "/api/connect/meta/events?dryRun=1", body: Self.purchase,
            environment: ["CONTENT_TYPE": "Application/JSON; charset=utf-8"])
        #expect(charset.status == 200)
        // Bearer calls between servers are unchanged by the cross-site rule.
        #expect(try world.run("send-event", "POST", "/api/connect/meta/events/replay").status == 200)
    }
}
