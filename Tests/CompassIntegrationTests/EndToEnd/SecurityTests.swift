import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// The claims of SECURITY.md, each shown.
@Suite(.serialized) struct SecurityTests {
    @Test func tenantIsolationOnEveryRoute() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789"])
        world.readyTenant("tenant_a")
        world.readyTenant("tenant_b")
        let before = try #require(world.integration("tenant_a"))
        // B reads, changes, sends and disconnects: only B's records move.
        #expect(world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings", tenant: "tenant_b")).status == 200)
        _ = world.run(
            SettingsHandler.self,
            world.request(
                "PUT", "/api/connect/meta/settings", tenant: "tenant_b",
                body: #"{"testEventCode":"BONLY"}"#))
        _ = world.send(world.lead("from-b"), tenant: "tenant_b")
        // Nothing in a request can name another tenant: the tenant is the session's.
        let spoof = world.request(
            "PUT", "/api/connect/meta/settings", tenant: "tenant_b",
            headers: ["x-tenant-id": "tenant_a"], body: #"{"testEventCode":"SPOOF"}"#)
        _ = world.run(SettingsHandler.self, spoof)
        _ = world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect", tenant: "tenant_b"))
        let after = try #require(world.integration("tenant_a"))
        #expect(after == before)
        #expect(world.credential("tenant_a") != nil)
        #expect(world.integration("tenant_b") == nil)
        // A's settings show A's own delivery figures only.
        let view = world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings", tenant: "tenant_a")).json
        #expect((view["delivery"] as? [String: Any])?["eventsSent"] as? Int == 0)
        // A state issued to A cannot complete B's connection (CallbackTests covers the rest).
        let stateForA = world.run(ConnectHandler.self, world.request("GET", "/api/connect/meta", tenant: "tenant_a")).header("Location")!
        let approved = try world.transport.send(HTTPRequest(method: "GET", url: stateForA + "&sandbox_action=approve"))
        let query = String(approved.headers["location"]!.split(separator: "?", maxSplits: 1)[1])
        let asB = world.run(
            CallbackHandler.self, world.request("GET", "/api/connect/meta/callback?" + query, tenant: "tenant_b", cookie: true))
        #expect(asB.header("Location")?.hasSuffix("error=meta_state_invalid") == true)
    }

    @Test func callbackNeverRedirectsToInput() {
        let world = World()
        for query in [
            "redirect_uri=https://evil.example", "next=//evil.example", "state=x&code=y&return=https%3A%2F%2Fevil",
            "error=access_denied&redirect=https://evil.example", "error=x%0d%0aLocation:%20https://evil",
        ] {
            let response = world.run(CallbackHandler.self, world.request("GET", "/api/connect/meta/callback?" + query, cookie: true))
            #expect(response.status == 302)
            let location = response.header("Location") ?? ""
            #expect(location.hasPrefix(World.base + "/settings/integrations?"))
            #expect(!location.contains("evil"))
        }
    }

    /// Every check of a secret or a signature compares through `Crypto.constantTimeEquals`
    /// (CRYPTO_memcmp): each check below, run with a witness bound, must be seen comparing.
    @Test func everySecretCheckComparesInConstantTime() throws {
        func comparisons(_ check: () throws -> Void) -> Int {
            let witness = ComparisonWitness()
            Crypto.$witness.withValue(witness) { try? check() }
            return witness.comparisons
        }
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.connectTenant()
        let verifier = SessionVerifier(secret: Array(World.jwtSecret.utf8))
        let checks: [(String, () throws -> Void)] = [
            ("session signature", { _ = try verifier.verify(world.token("tenant_a"), now: world.clock.now) }),
            (
                "signed_request signature",
                {
                    _ = try MetaWebhooksHandler.verify(
                        world.signedRequest(user: SandboxData.defaultUserId), secret: World.appSecret, now: world.clock.now)
                }
            ),
            (
                "cron secret",
                {
                    _ = try RefreshCronHandler(dependencies: world.dependencies).handle(
                        world.request("POST", "/api/cron/meta/refresh", tenant: nil, headers: ["authorization": "Bearer wrong"]))
                }
            ),
            (
                "sandbox client_secret",
                {
                    _ = world.sandbox.handle(
                        .init(
                            method: "GET", path: "/v26.0/oauth/access_token",
                            query: QueryParameters(parsing: "client_id=\(World.appId)&client_secret=x&code=y&redirect_uri=z")))
                }
            ),
            (
                "sandbox appsecret_proof",
                {
                    let token = QueryParameters.encode(try world.storedToken())
                    _ = world.sandbox.handle(
                        .init(method: "GET", path: "/v26.0/me", query: QueryParameters(parsing: "access_token=\(token)&appsecret_proof=p")))
                }
            ),
            (
                "sandbox app token",
                {
                    _ = world.sandbox.handle(
                        .init(
                            method: "GET", path: "/v26.0/debug_token",
                            query: QueryParameters(parsing: "access_token=\(World.appId)%7Cwrong&input_token=t")))
                }
            ),
        ]
        for (name, check) in checks {
            #expect(comparisons(check) >= 1, "\(name) does not compare through Crypto.constantTimeEquals")
        }
    }

    @Test func anEndToEndRunLeaksNothing() throws {
        let world = try CGIWorld()
        world.extra["CRON_SECRET"] = "cron-secret-leak-check-0123456789"
        var transcript = ""
        func record(_ response: CGIWorld.Response) { transcript += response.raw + "\n" + response.stderr + "\n" }
        let query = try world.approvedCallbackQuery()
        record(try world.run("callback", "GET", "/api/connect/meta/callback?" + query, cookie: true))
        record(try world.run("settings", "PUT", "/api/connect/meta/settings", body: #"{"adAccountId":"act_1000001","pixelId":"2000101"}"#))
        record(try world.run("settings", "GET", "/api/connect/meta/settings?adAccountId=act_1000001"))
        let pii = ["jane.leak@example.com", "+1 650 555 0199", "Janeleak", "Doeleak", "Leaktown", "94999", "1985-07-04", "crm-leak-77"]
        let event =
            #"{"eventName":"Purchase","eventTime":\#(Date().unixSeconds - 30),"actionSource":"website","eventId":"leak-1","eventSourceUrl":"https://shop.example/","userData":{"em":"\#(pii[0])","ph":"\#(pii[1])","fn":"\#(pii[2])","ln":"\#(pii[3])","ct":"\#(pii[4])","zp":"\#(pii[5])","db":"\#(pii[6])","external_id":"\#(pii[7])","client_user_agent":"UA"},"customData":{"value":5,"currency":"USD"}}"#
        record(try world.run("send-event", "POST", "/api/connect/meta/events", body: event))
        record(try world.run("send-event", "POST", "/api/connect/meta/events", query: "", body: event, dryRun: true))
        record(
            try world.run(
                "refresh-cron", "POST", "/api/cron/meta/refresh", tenant: nil,
                headers: ["Authorization": "Bearer cron-secret-leak-check-0123456789"]))
        record(try world.run("disconnect", "POST", "/api/connect/meta/disconnect"))
        let parameters = QueryParameters(parsing: query)
        let secrets = [
            World.appSecret, World.jwtSecret, world.credentialsKey, "cron-secret-leak-check-0123456789",
            parameters.single("code")!, parameters.single("state")!, world.token("tenant_a"),
        ]
        for secret in secrets { #expect(!transcript.contains(secret), "a secret leaked: \(secret.prefix(6))...") }
        #expect(!transcript.contains("EAAS"), "a Meta token leaked")
        for value in pii { #expect(!transcript.contains(value), "raw PII leaked: \(value)") }
        // The stored outbox and records hold hashes only.
        let storeText = FileManager.default.enumerator(atPath: world.folder.path + "/store")!.compactMap { $0 as? String }
            .compactMap { try? String(contentsOfFile: world.folder.path + "/store/" + $0, encoding: .utf8) }.joined()
        for value in pii { #expect(!storeText.contains(value), "raw PII stored: \(value)") }
    }
}
