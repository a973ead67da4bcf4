import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite(.serialized) struct ExecutableTests {
    let settings = "\(World.base)/settings/integrations"

    @Test func theWholeLifecycleThroughTheBuiltExecutables() throws {
        let world = try CGIWorld()
        let connect = try world.run("connect", "GET", "/api/connect/meta", cookie: true)
        #expect(connect.status == 302)
        #expect(connect.header("Location")?.hasPrefix(world.server.baseURL + "/\(MetaSettings.defaultAPIVersion)/dialog/oauth?") == true)
        #expect(connect.header("Cache-Control") == "no-store")

        let callback = try world.run("callback", "GET", "/api/connect/meta/callback?" + world.approvedCallbackQuery(), cookie: true)
        #expect(callback.status == 302)
        #expect(callback.header("Location") == "\(settings)?connected=meta")

        let view = try world.run("settings", "GET", "/api/connect/meta/settings")
        #expect(view.status == 200)
        #expect(view.header("Content-Type") == "application/json; charset=utf-8")
        #expect(view.json["status"] as? String == "connected")
        #expect((view.json["adAccounts"] as? [Any])?.count == 5)

        let pixels = try world.run("settings", "GET", "/api/connect/meta/settings?adAccountId=act_1000004")
        #expect((pixels.json["pixels"] as? [[String: Any]])?.prefix(2).map { $0["id"] as? String } == ["2000401", "2000402"])

        let put = try world.run(
            "settings", "PUT", "/api/connect/meta/settings",
            body: #"{"adAccountId":"act_1000004","pixelId":"2000402","testEventCode":"TEST9"}"#)
        #expect(put.status == 200)
        #expect(put.json["pixelId"] as? String == "2000402")

        let disconnect = try world.run(
            "disconnect", "POST", "/api/connect/meta/disconnect", cookie: true,
            headers: ["Origin": World.base])
        #expect(disconnect.status == 200)
        #expect(disconnect.body == #"{"disconnected":true,"revokedAtMeta":true}"#)
        #expect(try world.run("settings", "GET", "/api/connect/meta/settings").status == 404)
    }

    /// libcurl is loaded where it is used, and libcrypto only with it, as its TLS library's (the
    /// dynamic loader's own account, LD_DEBUG=files): connect, a redirect signed with nettle's
    /// HMAC, maps neither; the callback, which calls Meta, maps both.
    @Test func cryptoAndHTTPLibrariesAreLoadedOnlyWhereUsed() throws {
        let world = try CGIWorld()
        world.extra["LD_DEBUG"] = "files"
        let connect = try world.run("connect", "GET", "/api/connect/meta", cookie: true)
        #expect(connect.status == 302)
        #expect(connect.stderr.contains("file=libc.so.6"), "the loader's account is there to read")
        #expect(!connect.stderr.contains("libcrypto.so") && !connect.stderr.contains("libcurl.so"))
        let callback = try world.run("callback", "GET", "/api/connect/meta/callback?" + world.approvedCallbackQuery(), cookie: true)
        #expect(callback.header("Location") == "\(settings)?connected=meta")
        #expect(callback.stderr.contains("file=libcrypto.so.3") && callback.stderr.contains("file=libcurl.so.4"))
    }

    @Test func callbackOutcomesThroughTheExecutable() throws {
        let world = try CGIWorld()
        let denied = try world.run(
            "callback", "GET", "/api/connect/meta/callback?error=access_denied&error_reason=user_denied", cookie: true)
        #expect(denied.header("Location") == "\(settings)?error=meta_denied")

        let query = try world.approvedCallbackQuery()
        let foreign = try world.run("callback", "GET", "/api/connect/meta/callback?" + query, tenant: "tenant_b", cookie: true)
        #expect(foreign.header("Location") == "\(settings)?error=meta_state_invalid")

        let missing = try world.run("callback", "GET", "/api/connect/meta/callback?code=AQxyz", cookie: true)
        #expect(missing.header("Location") == "\(settings)?error=meta_state_invalid")

        try world.fault(.serverError, path: "me/adaccounts")
        let failed = try world.run("callback", "GET", "/api/connect/meta/callback?" + world.approvedCallbackQuery(), cookie: true)
        #expect(failed.header("Location") == "\(settings)?error=meta_exchange_failed")
        #expect(try world.run("settings", "GET", "/api/connect/meta/settings").status == 404)
    }

    @Test func aSlowMetaIsCutOffAtTheConfiguredTimeout() throws {
        let world = try CGIWorld()
        world.extra["META_TIMEOUT_MS"] = "300"
        let query = try world.approvedCallbackQuery()
        try world.fault(.timeout, path: "oauth/access_token", delay: 8000)
        let started = Date()
        let response = try world.run("callback", "GET", "/api/connect/meta/callback?" + query, cookie: true)
        #expect(response.header("Location") == "\(settings)?error=meta_exchange_failed")
        // Cut off at 300 ms, not after Meta's 8 s: the bound is far from both.
        #expect(Date().timeIntervalSince(started) < 6)
        #expect(response.stderr.contains(#""transport_error":"timeout""#), "\(response.stderr.suffix(400))")
    }

    @Test func disconnectWhileMetaIsUnreachableStillDeletes() throws {
        let world = try CGIWorld()
        _ = try world.run("callback", "GET", "/api/connect/meta/callback?" + world.approvedCallbackQuery(), cookie: true)
        world.extra["META_GRAPH_URL"] = "http://127.0.0.1:9"
        let response = try world.run("disconnect", "POST", "/api/connect/meta/disconnect")
        #expect(response.body == #"{"disconnected":true,"revokeSkipped":"meta_unreachable","revokedAtMeta":false}"#)
        #expect(try world.run("settings", "GET", "/api/connect/meta/settings").status == 404)
    }

    @Test func requestErrorsAreCleanJSON() throws {
        let world = try CGIWorld()
        let noSession = try world.run("connect", "GET", "/api/connect/meta", tenant: nil)
        #expect(noSession.status == 401 && noSession.errorCode == "unauthorized")

        let wrongMethod = try world.run("settings", "DELETE", "/api/connect/meta/settings")
        #expect(wrongMethod.status == 405 && wrongMethod.header("Allow") == "GET, PUT")

        let tooLarge = try world.run("settings", "PUT", "/api/connect/meta/settings", contentLength: "10485760")
        #expect(tooLarge.status == 413 && tooLarge.errorCode == "body_too_large")

        let negative = try world.run("settings", "PUT", "/api/connect/meta/settings", contentLength: "-5")
        #expect(negative.status == 400 && negative.errorCode == "bad_content_length")

        let short = try world.run("settings", "PUT", "/api/connect/meta/settings", body: "{}", contentLength: "50")
        #expect(short.status == 400 && short.errorCode == "incomplete_body")

        let malformed = try world.run("settings", "PUT", "/api/connect/meta/settings", body: #"{"adAccountId":"#)
        #expect(malformed.status == 400 || malformed.status == 404)

        let noMethod = try world.run("connect", "GET", "/", environment: ["REQUEST_METHOD": nil])
        #expect(noMethod.status == 400)

        let head = try world.run("settings", "HEAD", "/api/connect/meta/settings")
        #expect(head.status == 404)
        #expect(head.body.isEmpty)

        var broken = try world.run("connect", "GET", "/api/connect/meta", environment: ["CREDENTIALS_KEY": "not-a-key"])
        #expect(broken.status == 500 && broken.errorCode == "misconfigured")
        #expect(broken.body.contains("CREDENTIALS_KEY"))
        broken = try world.run("connect", "GET", "/api/connect/meta", environment: ["META_APP_ID": nil])
        #expect(broken.status == 500 && broken.body.contains("META_APP_ID"))
    }

    @Test func aProxyHeaderNeverRoutesOutboundCalls() throws {
        let world = try CGIWorld()
        // A request header `Proxy:` arrives as HTTP_PROXY. If libcurl honoured it, the exchange
        // would go to the dead port and fail; it must go straight to the sandbox.
        let query = try world.approvedCallbackQuery()
        let response = try world.run(
            "callback", "GET", "/api/connect/meta/callback?" + query, cookie: true,
            headers: ["Proxy": "http://127.0.0.1:9"], environment: ["http_proxy": "http://127.0.0.1:9"])
        #expect(response.header("Location") == "\(settings)?connected=meta")
    }

    @Test func logsCarryNoSecrets() throws {
        let world = try CGIWorld()
        var logs = ""
        let connect = try world.run("connect", "GET", "/api/connect/meta", cookie: true)
        logs += connect.stderr
        let query = try world.approvedCallbackQuery()
        let callback = try world.run("callback", "GET", "/api/connect/meta/callback?" + query, cookie: true)
        logs += callback.stderr
        logs += try world.run("settings", "GET", "/api/connect/meta/settings?adAccountId=act_1000001").stderr
        logs += try world.run("disconnect", "POST", "/api/connect/meta/disconnect").stderr
        let code = QueryParameters(parsing: query).single("code")!
        let state = QueryParameters(parsing: query).single("state")!
        for secret in [World.appSecret, World.jwtSecret, world.credentialsKey, code, state, world.token("tenant_a")] {
            #expect(!logs.contains(secret))
        }
        #expect(!logs.contains("EAAS"))
        #expect(logs.contains("\"event\":\"meta_connected\""))
        for line in logs.split(separator: "\n") {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil)
        }
    }
}
