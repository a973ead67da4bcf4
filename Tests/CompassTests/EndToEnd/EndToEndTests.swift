import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage

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

extension LighttpdHost {
    /// Logs in, connects through the sandbox dialog and picks act_1000001's first pixel.
    func readyTenant(_ tenant: String, testEventCode: String? = nil) throws -> [(String, String)] {
        let cookie = try login(tenant)
        let session = [("Cookie", cookie)]
        let connect = try send("GET", "/api/connect/meta", headers: session)
        let approved = try send("GET", (connect.headers["location"] ?? "") + "&sandbox_action=approve")
        _ = try send("GET", approved.headers["location"] ?? "", headers: session)
        let code = testEventCode.map { #","testEventCode":"\#($0)""# } ?? ""
        _ = try send(
            "PUT", "/api/connect/meta/settings", headers: session + [("Origin", base)],
            body: #"{"adAccountId":"act_1000001","pixelId":"2000101"\#(code)}"#)
        return [("Authorization", "Bearer " + String(cookie.dropFirst("compass_session=".count))), ("Content-Type", "application/json")]
    }

    func events(_ bearer: [(String, String)], _ body: String, query: String = "") throws -> (status: Int, json: [String: Any]) {
        let response = try send("POST", "/api/connect/meta/events" + query, headers: bearer, body: body)
        return (response.status, (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:])
    }

    func deliveredIds(pixel: String = "2000101") throws -> [String] {
        let answer = try send("GET", "/graph/sandbox/events?pixel=\(pixel)")
        let object = try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]
        return (object?["events"] as? [[String: Any]])?.compactMap { ($0["event"] as? [String: Any])?["event_id"] as? String } ?? []
    }

    func fault(_ kind: String, path: String, remaining: Int = 1) throws {
        _ = try send("POST", "/graph/sandbox/faults", body: #"{"kind":"\#(kind)","path":"\#(path)","remaining":\#(remaining)}"#)
    }

    /// refresh-cron as cron runs it: no CGI variables, the configuration only.
    func runCronDirectly() throws -> [String: Any] {
        var env = environment.filter { Config.variables.contains($0.key) }
        env["SWIFT_BACKTRACE"] = "enable=no"
        let result = try Executables.runCGI("refresh-cron", environment: env)
        return (try? JSONSerialization.jsonObject(with: Data(result.stdout))) as? [String: Any] ?? [
            "raw": result.text, "status": result.status,
        ]
    }

    static func lead(_ id: String, secondsAgo: Int64 = 60) -> String {
        #"{"eventName":"Lead","eventTime":\#(Date().unixSeconds - secondsAgo),"actionSource":"system_generated","eventId":"\#(id)","userData":{"em":"\#(id)@example.com","external_id":"\#(id)"}}"#
    }

    static func batch(_ ids: [String]) -> String { #"{"events":[\#(ids.map { lead($0) }.joined(separator: ","))]}"# }
}

@Suite(.serialized) struct EventEndToEndTests {
    @Test func eventsThroughTheHostEveryWayTheyCanGo() throws {
        let host = try LighttpdHost()
        let bearer = try host.readyTenant("tenant_events", testEventCode: "TEST55")

        // One event, delivered with the test event code.
        let one = try host.events(bearer, LighttpdHost.lead("one"))
        #expect(one.status == 200 && one.json["eventsReceived"] as? Int == 1)
        let stored = String(decoding: try host.send("GET", "/graph/sandbox/events?pixel=2000101").body, as: UTF8.self)
        #expect(stored.contains(#""test_event_code":"TEST55""#))
        #expect(!stored.contains("one@example.com"))

        // Dry run: the payload, nothing sent.
        let dry = try host.events(bearer, LighttpdHost.lead("dry"), query: "?dryRun=1")
        #expect(dry.status == 200 && dry.json["status"] as? String == "dry_run")

        // 1500 events: two requests to Meta.
        let many = try host.events(bearer, LighttpdHost.batch((0..<1500).map { "bulk\($0)" }))
        #expect(many.status == 200 && many.json["eventsReceived"] as? Int == 1500)

        // A mixed batch.
        let mixed = try host.events(bearer, #"{"events":[\#(LighttpdHost.lead("mix1")),{"eventName":"Lead"}]}"#)
        #expect(mixed.status == 207)

        // From a browser with the session cookie (same origin), too.
        let cookie = try host.login("tenant_events")
        let fromBrowser = try host.send(
            "POST", "/api/connect/meta/events",
            headers: [("Cookie", cookie), ("Origin", host.base), ("Content-Type", "application/json")],
            body: LighttpdHost.lead("cookie1"))
        #expect(fromBrowser.status == 200)

        // Dedup.
        let again = try host.events(bearer, LighttpdHost.lead("one"))
        #expect(again.status == 200 && again.json["duplicates"] as? Int == 1)

        // Rate limit: queued.
        try host.fault("rate_limit", path: "2000101/events")
        let limited = try host.events(bearer, LighttpdHost.lead("limited"))
        #expect(limited.status == 202)

        let ids = try host.deliveredIds()
        #expect(ids.count == 1503)
        #expect(Set(ids).count == ids.count)
        let calls = String(decoding: try host.send("GET", "/graph/sandbox/calls").body, as: UTF8.self)
        #expect(calls.components(separatedBy: #""path":"2000101/events""#).count - 1 == 6)
    }

    @Test func anOutageThenConcurrentDrainsDeliverEachEventOnce() throws {
        let host = try LighttpdHost()
        let bearer = try host.readyTenant("tenant_outage")
        try host.fault("server_error", path: "2000101/events", remaining: 3)
        let ids = (0..<3).flatMap { request in (0..<20).map { "out\(request)-\($0)" } }
        for request in 0..<3 {
            let queued = try host.events(bearer, LighttpdHost.batch(Array(ids[(request * 20)..<((request + 1) * 20)])))
            #expect(queued.status == 202 && queued.json["queued"] as? Int == 20)
        }
        #expect(try host.deliveredIds().isEmpty)

        // Three drains at once: two run by cron directly, one over HTTP with the secret.
        let group = DispatchGroup()
        let results = LogCapture()
        for index in 0..<3 {
            DispatchQueue.global().async(group: group) {
                if index < 2 {
                    let summary = try? host.runCronDirectly()
                    results.logger().info("direct", ["sent": .int((summary?["outbox"] as? [String: Any])?["sent"] as? Int ?? -1)])
                } else {
                    let response = try? host.send(
                        "POST", "/api/cron/meta/refresh", headers: [("Authorization", "Bearer cron-secret-for-tests-0123456789")])
                    results.logger().info("http", ["status": .int(response?.status ?? 0)])
                }
            }
        }
        group.wait()
        _ = try host.runCronDirectly()
        let delivered = try host.deliveredIds()
        #expect(delivered.count == 60)
        #expect(Set(delivered) == Set(ids))
        #expect(results.text.contains(#""status":200"#))
    }

    @Test func theCronRouteRefusesAnyoneWithoutTheSecret() throws {
        let host = try LighttpdHost()
        #expect(try host.send("POST", "/api/cron/meta/refresh").status == 401)
        #expect(try host.send("POST", "/api/cron/meta/refresh", headers: [("Authorization", "Bearer wrong")]).status == 401)
        let direct = try host.runCronDirectly()
        #expect(direct["outbox"] != nil)
    }

    @Test func deadLettersCanBeReplayedThroughTheHost() throws {
        let host = try LighttpdHost()
        let bearer = try host.readyTenant("tenant_dead")
        try host.fault("server_error", path: "2000101/events", remaining: 1)
        #expect(try host.events(bearer, LighttpdHost.lead("late", secondsAgo: 7 * 86_400 - 120)).status == 202)
        // The event has left Meta's window by the time the drain runs: dead-lettered.
        let drained = try host.runCronDirectly()
        #expect((drained["outbox"] as? [String: Any])?["dead"] as? Int == 1)
        let settings = try host.send("GET", "/api/connect/meta/settings", headers: bearer)
        let delivery = (try JSONSerialization.jsonObject(with: Data(settings.body)) as? [String: Any])?["delivery"] as? [String: Any]
        #expect(delivery?["dead"] as? Int == 1)
        let replay = try host.send("POST", "/api/connect/meta/events/replay", headers: bearer)
        #expect(replay.status == 200)
        #expect(String(decoding: replay.body, as: UTF8.self).contains(#""expired":1"#))
    }
}

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

/// The whole flow through nginx: with fcgiwrap (CGI) and with the executables as FastCGI
/// processes, each from the configuration `HostSetup` generates from functions.json; the same
/// for Apache.
@Suite(.serialized) struct NginxEndToEndTests {
    func location(_ response: HTTPResponse) -> String { response.headers["location"] ?? "" }

    @Test(
        .enabled(if: NginxHost.available, "nginx or fcgiwrap is not installed (scripts/setup installs them)"),
        arguments: [false, true])
    func theWholeFlowThroughNginx(fastCGI: Bool) throws {
        try theWholeFlow(try NginxHost(fastCGI: fastCGI), fastCGI: fastCGI)
    }

    @Test(
        .enabled(if: NginxHost.apacheAvailable, "apache2 is not installed (scripts/setup installs it)"),
        arguments: [false, true])
    func theWholeFlowThroughApache(fastCGI: Bool) throws {
        try theWholeFlow(try NginxHost(fastCGI: fastCGI, server: .apache), fastCGI: fastCGI)
    }

    /// Through Apache's `mod_proxy_fcgi`, which streams a body to the responder as it comes: a
    /// client sending its body a byte at a time holds one responder, never the others, and only
    /// until the responder's limit (5 s here), not for Apache's timeout.
    @Test(.enabled(if: NginxHost.apacheAvailable, "apache2 is not installed (scripts/setup installs it)"))
    func aSlowBodyThroughApacheHoldsOneResponderAndOnlyUntilTheLimit() throws {
        let host = try NginxHost(fastCGI: true, server: .apache)
        let session =
            "Bearer " + SessionVerifier(secret: Array(World.jwtSecret.utf8)).mint(tenantId: "tenant_b", expiresAt: Date().unixSeconds + 600)
        func slowPut() throws -> Int32 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(host.port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
            let head =
                "PUT /api/connect/meta/settings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: \(session)\r\n"
                + "Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{"
            _ = Array(head.utf8).withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            return fd
        }
        let trickling = Atomic<Bool>(true)
        let slow = [try slowPut(), try slowPut()]
        defer { for fd in slow { close(fd) } }
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            var space: UInt8 = 32
            let started = Date()
            while trickling.load(ordering: .relaxed), Date().timeIntervalSince(started) < 20 {
                for fd in slow { _ = send(fd, &space, 1, Int32(MSG_NOSIGNAL)) }
                usleep(200_000)
            }
            done.signal()
        }
        defer {
            trickling.store(false, ordering: .relaxed)
            done.wait()
        }
        usleep(700_000)
        // Both responders of settings are held; a tenant's request is answered once the first
        // slow client is given up (5 s), well before Apache's own timeout.
        let start = Date()
        let answer = try host.send("GET", "/api/connect/meta/settings", headers: [("Authorization", session)])
        let waited = Date().timeIntervalSince(start)
        #expect(answer.status == 404, "\(answer.status)")
        #expect(waited < 8, "a tenant waited \(waited) s behind two slow bodies")
        // With a responder free, a tenant waits for nobody.
        usleep(500_000)
        let again = Date()
        #expect(try host.send("GET", "/api/connect/meta/settings", headers: [("Authorization", session)]).status == 404)
        #expect(Date().timeIntervalSince(again) < 1)
    }

    func theWholeFlow(_ host: NginxHost, fastCGI: Bool) throws {
        let token = SessionVerifier(secret: Array(World.jwtSecret.utf8)).mint(tenantId: "tenant_nginx", expiresAt: Date().unixSeconds + 600)
        let cookie = [("Cookie", "compass_session=" + token)]
        let bearer = [("Authorization", "Bearer " + token)]
        let connect = try host.send("GET", "/api/connect/meta", headers: cookie)
        #expect(connect.status == 302, "\(String(decoding: connect.body, as: UTF8.self)) \(host.log.suffix(1500))")
        let approved = try CurlTransport().send(HTTPRequest(method: "GET", url: location(connect) + "&sandbox_action=approve"))
        let back = location(approved)
        let query = String(back.split(separator: "?", maxSplits: 1).last ?? "")
        let callback = try host.send("GET", "/api/connect/meta/callback?" + query, headers: cookie)
        #expect(location(callback) == host.base + "/settings/integrations?connected=meta")
        #expect(try host.send("GET", "/api/connect/meta/settings?adAccountId=act_1000001", headers: bearer).status == 200)
        let put = try host.send(
            "PUT", "/api/connect/meta/settings", headers: cookie + [("Origin", host.base)],
            body: #"{"adAccountId":"act_1000001","pixelId":"2000101"}"#)
        #expect(put.status == 200, "\(String(decoding: put.body, as: UTF8.self))")
        let event = try host.send("POST", "/api/connect/meta/events", headers: bearer, body: LighttpdHost.lead("nginx-\(fastCGI)"))
        #expect(event.status == 200, "\(String(decoding: event.body, as: UTF8.self))")
        let delivered = try CurlTransport().send(HTTPRequest(method: "GET", url: host.server.baseURL + "/sandbox/events?pixel=2000101"))
        #expect(String(decoding: delivered.body, as: UTF8.self).contains("nginx-\(fastCGI)"))
        let cron = try host.send("POST", "/api/cron/meta/refresh", headers: [("Authorization", "Bearer cron-secret-for-tests-0123456789")])
        #expect(cron.status == 200, "\(String(decoding: cron.body, as: UTF8.self))")
        // nginx passes a chunked body on as a whole; a body to a GET-only route gets its JSON error.
        let chunked = try host.send(
            "POST", "/api/connect/meta/events", headers: bearer + [("Transfer-Encoding", "chunked")],
            body: LighttpdHost.lead("nginx-chunked-\(fastCGI)"))
        #expect(chunked.status == 200, "\(String(decoding: chunked.body, as: UTF8.self))")
        let big = try host.send("POST", "/api/connect/meta", headers: bearer, body: String(repeating: "x", count: 100_000))
        #expect(big.status == 405 && String(decoding: big.body, as: UTF8.self).contains("method_not_allowed"))
        let disconnect = try host.send("POST", "/api/connect/meta/disconnect", headers: cookie + [("Origin", host.base)])
        #expect(disconnect.status == 200)
        #expect(try host.send("GET", "/api/connect/meta/settings", headers: bearer).status == 404)
    }
}

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
