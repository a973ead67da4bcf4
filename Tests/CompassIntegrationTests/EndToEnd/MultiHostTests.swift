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

/// Two CGI hosts (two lighttpd on two ports) sharing a three-node etcd cluster on loopback, as
/// Compass runs when it outgrows one machine. Both use the same Graph sandbox.
@Suite(.serialized) struct MultiHostTests {
    struct Deployment {
        let cluster: EtcdCluster
        let a: LighttpdHost
        let b: LighttpdHost

        init() throws {
            cluster = try EtcdCluster(size: 3)
            let shared = [
                "STORE_URL": cluster.storeURL(namespace: "compass"),
                "CREDENTIALS_KEY": Data(Crypto.randomBytes(32)).base64EncodedString(),
            ]
            a = try LighttpdHost(extra: shared)
            // B reaches Meta through A's sandbox mount: one Meta for both hosts; and both sit
            // behind one public address (A's), as load-balanced hosts do.
            b = try LighttpdHost(
                extra: shared.merging([
                    "OAUTH_REDIRECT_BASE_URL": a.base,
                    "META_GRAPH_URL": a.base + "/graph", "META_DIALOG_URL": a.base + "/graph",
                    "SANDBOX_STATE_DIR": a.environment["SANDBOX_STATE_DIR"]!, "SANDBOX_BASE_URL": a.base + "/graph",
                ]) { _, new in new })
        }
    }

    func json(_ response: HTTPResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
    }

    @Test(.timeLimit(.minutes(3)))
    func twoHostsOneClusterAndANodeDown() throws {
        let deployment = try Deployment()
        let (a, b, cluster) = (deployment.a, deployment.b, deployment.cluster)

        // Connect on host A, come back from Meta on host B.
        let cookie = try a.login("tenant_multi")
        let session = [("Cookie", cookie)]
        let connect = try a.send("GET", "/api/connect/meta", headers: session)
        let approved = try a.send("GET", (connect.headers["location"] ?? "") + "&sandbox_action=approve")
        let callbackQuery = String((approved.headers["location"] ?? "").split(separator: "?", maxSplits: 1)[1])
        let callback = try b.send("GET", "/api/connect/meta/callback?" + callbackQuery, headers: session)
        #expect(callback.headers["location"] == a.base + "/settings/integrations?connected=meta")
        let put = try a.send(
            "PUT", "/api/connect/meta/settings", headers: session + [("Origin", a.base), ("Content-Type", "application/json")],
            body: #"{"adAccountId":"act_1000001","pixelId":"2000101"}"#)
        #expect(put.status == 200)
        let bearer = [
            ("Authorization", "Bearer " + String(cookie.dropFirst("compass_session=".count))), ("Content-Type", "application/json"),
        ]
        #expect(json(try b.send("GET", "/api/connect/meta/settings", headers: bearer))["pixelId"] as? String == "2000101")

        // Events on both hosts.
        #expect(try a.events(bearer, LighttpdHost.lead("ha1")).status == 200)
        #expect(try b.events(bearer, LighttpdHost.lead("hb1")).status == 200)
        #expect(try b.events(bearer, LighttpdHost.lead("ha1")).json["duplicates"] as? Int == 1)

        // An outage: events queue on both hosts; the cron runs on both at once.
        try a.fault("server_error", path: "2000101/events", remaining: 2)
        #expect(try a.events(bearer, LighttpdHost.batch((0..<10).map { "qa\($0)" })).status == 202)
        #expect(try b.events(bearer, LighttpdHost.batch((0..<10).map { "qb\($0)" })).status == 202)
        let group = DispatchGroup()
        for host in [a, b] { DispatchQueue.global().async(group: group) { _ = try? host.runCronDirectly() } }
        group.wait()
        _ = try a.runCronDirectly()
        var ids = try a.deliveredIds()
        #expect(ids.count == 22)
        #expect(Set(ids).count == ids.count)

        // One node of three killed mid-run: nothing a user can see changes.
        cluster.kill(0)
        #expect(try a.events(bearer, LighttpdHost.lead("after-kill-a")).status == 200)
        #expect(try b.events(bearer, LighttpdHost.lead("after-kill-b")).status == 200)
        #expect(try b.send("GET", "/api/connect/meta", headers: session).status == 302)
        try a.fault("server_error", path: "2000101/events", remaining: 1)
        #expect(try a.events(bearer, LighttpdHost.lead("queued-before-outage")).status == 202)

        // Every node down: a clear 503 within seconds, never a hang, never a false success.
        cluster.killAll()
        let started = Date()
        let down = try a.send("POST", "/api/connect/meta/events", headers: bearer, body: LighttpdHost.lead("during-outage"))
        #expect(down.status == 503)
        #expect(json(down)["error"].map { ($0 as? [String: Any])?["code"] as? String } == "store_unavailable")
        // The store gives up within its 9-second deadline: never a hang.
        #expect(Date().timeIntervalSince(started) < 20)
        #expect(try b.send("GET", "/api/connect/meta", headers: session).status == 503)
        let cron = try b.runCronDirectly()
        #expect(cron["error"] != nil)

        // The cluster comes back: what was accepted before is delivered, once.
        for node in 0..<3 { try cluster.start(node) }
        try cluster.waitUntilServing()
        _ = try b.runCronDirectly()
        ids = try a.deliveredIds()
        #expect(ids.contains("queued-before-outage"))
        #expect(!ids.contains("during-outage"))
        #expect(Set(ids).count == ids.count)
        #expect(ids.count == 25)
    }
}
