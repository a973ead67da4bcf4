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

@Suite(.serialized) struct TokenLifecycleEndToEndTests {
    func signedRequest(user: String) -> String {
        let payload = Base64URL.encode(Array(#"{"algorithm":"HMAC-SHA256","issued_at":\#(Date().unixSeconds),"user_id":"\#(user)"}"#.utf8))
        return Base64URL.encode(Crypto.hmacSHA256(key: Array(World.appSecret.utf8), message: Array(payload.utf8))) + "." + payload
    }

    @Test func renewalNeedsReauthAndReconnectThroughTheHost() throws {
        // Tokens of two days make renewal due at once, so the real clock can be used.
        let host = try LighttpdHost()
        _ = try host.send("POST", "/graph/sandbox/settings", body: #"{"longLivedTokenSeconds":172800}"#)
        let bearer = try host.readyTenant("tenant_tokens")
        _ = try host.send("POST", "/graph/sandbox/settings", body: #"{"longLivedTokenSeconds":5184000}"#)
        var summary = try host.runCronDirectly()
        #expect((summary["tokens"] as? [String: Any])?["renewed"] as? Int == 1)
        summary = try host.runCronDirectly()
        #expect((summary["tokens"] as? [String: Any])?["renewed"] as? Int == 0)
        let settings =
            try JSONSerialization.jsonObject(with: Data(try host.send("GET", "/api/connect/meta/settings", headers: bearer).body))
            as? [String: Any]
        #expect((settings?["lastRefresh"] as? [String: Any])?["outcome"] as? String == "renewed")

        // Meta stops accepting the token: the event waits, the integration needs a new login.
        try host.fault("token_expired", path: "2000101/events")
        #expect(try host.events(bearer, LighttpdHost.lead("waits")).status == 202)
        let after =
            try JSONSerialization.jsonObject(with: Data(try host.send("GET", "/api/connect/meta/settings", headers: bearer).body))
            as? [String: Any]
        #expect(after?["status"] as? String == "needs_reauth")
        summary = try host.runCronDirectly()
        #expect(try host.deliveredIds().isEmpty)

        // Reconnect; the next cron run delivers what waited.
        _ = try host.readyTenant("tenant_tokens")
        summary = try host.runCronDirectly()
        #expect((summary["outbox"] as? [String: Any])?["sent"] as? Int == 1)
        #expect(try host.deliveredIds() == ["waits"])
    }

    @Test func metasCallbacksThroughTheHost() throws {
        let host = try LighttpdHost()
        let bearer = try host.readyTenant("tenant_callbacks")
        let form = [("Content-Type", "application/x-www-form-urlencoded")]
        let forged = try host.send("POST", "/api/connect/meta/deauthorize", headers: form, body: "signed_request=abc.def")
        #expect(forged.status == 400 || forged.status == 401)
        let good = try host.send(
            "POST", "/api/connect/meta/deauthorize", headers: form,
            body: "signed_request=" + QueryParameters.encode(signedRequest(user: SandboxData.defaultUserId)))
        #expect(good.status == 200)
        let settings =
            try JSONSerialization.jsonObject(with: Data(try host.send("GET", "/api/connect/meta/settings", headers: bearer).body))
            as? [String: Any]
        #expect(settings?["status"] as? String == "disconnected")

        _ = try host.readyTenant("tenant_callbacks")
        let deletion = try host.send(
            "POST", "/api/connect/meta/data-deletion", headers: form,
            body: "signed_request=" + QueryParameters.encode(signedRequest(user: SandboxData.defaultUserId)))
        #expect(deletion.status == 200)
        let answer = try JSONSerialization.jsonObject(with: Data(deletion.body)) as? [String: Any]
        let url = try #require(answer?["url"] as? String)
        #expect(url.hasPrefix(host.base + "/api/connect/meta/data-deletion?code="))
        let status = try host.send("GET", url)
        #expect(status.status == 200)
        #expect(String(decoding: status.body, as: UTF8.self).contains(#""status":"completed""#))
        #expect(try host.send("GET", "/api/connect/meta/settings", headers: bearer).status == 404)
    }
}
