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

/// Every route over real HTTP through a real CGI host (lighttpd), with Meta played by the Graph
/// sandbox, mounted on the same host as `scripts/serve` mounts it.
@Suite(.serialized) struct EndToEndTests {
    func location(_ response: HTTPResponse) -> String { response.headers["location"] ?? "" }

    /// The whole flow as CGI (a process per request) and as FastCGI (the same executables kept
    /// warm by lighttpd's mod_fastcgi), then an event and refresh-cron over HTTP.
    @Test(arguments: [false, true])
    func connectPickAPixelAndDisconnect(fastCGI: Bool) throws {
        let host = try LighttpdHost(fastCGI: fastCGI)
        let cookie = try host.login("tenant_e2e")
        #expect(cookie.hasPrefix("compass_session="))
        let session = [("Cookie", cookie)]

        let connect = try host.send("GET", "/api/connect/meta", headers: session)
        #expect(connect.status == 302)
        #expect(location(connect).hasPrefix(host.base + "/graph/v26.0/dialog/oauth?"))

        let dialog = try host.send("GET", location(connect))
        #expect(dialog.status == 200)
        #expect(String(decoding: dialog.body, as: UTF8.self).contains("id=\"approve\""))

        let approved = try host.send("GET", location(connect) + "&sandbox_action=approve")
        #expect(location(approved).hasPrefix(host.base + "/api/connect/meta/callback?code="))

        let callback = try host.send("GET", location(approved), headers: session)
        #expect(callback.status == 302)
        #expect(location(callback) == host.base + "/settings/integrations?connected=meta")

        // Authorization reaches the handler through lighttpd.
        let bearer = [("Authorization", "Bearer " + String(cookie.dropFirst("compass_session=".count)))]
        let pixels = try host.send("GET", "/api/connect/meta/settings?adAccountId=act_1000001", headers: bearer)
        #expect(pixels.status == 200)
        #expect(String(decoding: pixels.body, as: UTF8.self).contains(#""id":"2000101""#))

        let put = try host.send(
            "PUT", "/api/connect/meta/settings", headers: session + [("Origin", host.base), ("Content-Type", "application/json")],
            body: #"{"adAccountId":"act_1000001","pixelId":"2000102"}"#)
        #expect(put.status == 200)
        let saved = try host.send("GET", "/api/connect/meta/settings", headers: session)
        #expect(String(decoding: saved.body, as: UTF8.self).contains(#""pixelId":"2000102""#))

        let event = try host.events(bearer, LighttpdHost.lead("e2e-\(fastCGI)"))
        #expect(event.status == 200 && event.json["eventsReceived"] as? Int == 1)
        #expect(try host.deliveredIds(pixel: "2000102") == ["e2e-\(fastCGI)"])
        let cron = try host.send("POST", "/api/cron/meta/refresh", headers: [("Authorization", "Bearer cron-secret-for-tests-0123456789")])
        #expect(cron.status == 200, "\(String(decoding: cron.body, as: UTF8.self))")
        // A path beyond a route, and a body to a GET-only route, answered with their JSON errors.
        #expect(try host.send("GET", "/api/connect/meta/settings/extra", headers: bearer).status == 404)
        let big = try host.send("POST", "/api/connect/meta", headers: bearer, body: String(repeating: "x", count: 100_000))
        #expect(big.status == 405 && String(decoding: big.body, as: UTF8.self).contains("method_not_allowed"))

        let disconnect = try host.send("POST", "/api/connect/meta/disconnect", headers: session + [("Origin", host.base)])
        #expect(disconnect.status == 200)
        #expect(String(decoding: disconnect.body, as: UTF8.self) == #"{"disconnected":true,"revokedAtMeta":true}"#)
        let calls = String(decoding: try host.send("GET", "/graph/sandbox/calls").body, as: UTF8.self)
        #expect(calls.contains(#""method":"DELETE","parameters":["access_token","appsecret_proof"],"path":"me/permissions""#))
        #expect(try host.send("GET", "/api/connect/meta/settings", headers: session).status == 404)
        // The host's log has each request's path, never its query: no OAuth code or state, no
        // token or app secret of the Graph calls the sandbox served.
        // (lighttpd writes its access log in batches: wait for the callback's line.)
        var log = host.log
        for _ in 0..<100 where !log.contains("GET /api/connect/meta/callback HTTP/1.1") {
            usleep(100_000)
            log = host.log
        }
        #expect(log.contains("GET /api/connect/meta/callback HTTP/1.1"), "\(log.suffix(2000))")
        for secret in ["code=", "state=", "access_token=", "client_secret=", "EAAS"] { #expect(!log.contains(secret), "\(secret)") }
    }

    @Test func theDenyPath() throws {
        let host = try LighttpdHost()
        let session = [("Cookie", try host.login("tenant_deny"))]
        let connect = try host.send("GET", "/api/connect/meta", headers: session)
        let denied = try host.send("GET", location(connect) + "&sandbox_action=deny")
        #expect(location(denied).contains("error=access_denied"))
        let callback = try host.send("GET", location(denied), headers: session)
        #expect(location(callback) == host.base + "/settings/integrations?error=meta_denied")
        #expect(try host.send("GET", "/api/connect/meta/settings", headers: session).status == 404)
    }

    @Test func errorsAndMethodsThroughTheHost() throws {
        let host = try LighttpdHost()
        let noSession = try host.send("GET", "/api/connect/meta")
        #expect(noSession.status == 401)
        #expect(noSession.headers["content-type"] == "application/json; charset=utf-8")
        let wrong = try host.send("DELETE", "/api/connect/meta/settings")
        #expect(wrong.status == 405)
        #expect(wrong.headers["allow"] == "GET, PUT")
        // A Proxy header is dropped before a handler sees it: the callback still reaches the sandbox.
        let session = [("Cookie", try host.login("tenant_proxy"))]
        let connect = try host.send("GET", "/api/connect/meta", headers: session)
        let approved = try host.send("GET", location(connect) + "&sandbox_action=approve")
        let callback = try host.send("GET", location(approved), headers: session + [("Proxy", "http://127.0.0.1:9")])
        #expect(location(callback) == host.base + "/settings/integrations?connected=meta")
    }

    @Test func theDevelopmentPagesAreServed() throws {
        let host = try LighttpdHost()
        let page = try host.send("GET", "/settings/integrations")
        #expect(page.status == 200)
        #expect(page.headers["content-type"] == "text/html; charset=utf-8")
        #expect(String(decoding: page.body, as: UTF8.self).contains("id=\"connect\""))
        #expect(try host.send("GET", "/dev/login").status == 200)
        #expect(location(try host.send("GET", "/")) == "/settings/integrations")
    }

    @Test func theDevelopmentConsoleIsOffUnlessEnabled() throws {
        let host = try LighttpdHost(extra: ["COMPASS_DEV_CONSOLE": "0"])
        #expect(try host.send("GET", "/dev/login").status == 404)
        #expect(try host.send("POST", "/dev/login", body: "tenant=x").headers["set-cookie"] == nil)
    }
}
