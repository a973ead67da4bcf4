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

/// Nothing is kept longer than promised: expired records are deleted, through the built
/// executables as a CGI host and an operator run them.
@Suite struct DataLifecycleTests {
    /// Keys under `prefix` in the file store of `world`, expired or not (files on disk).
    static func files(_ world: CGIWorld, under prefix: String) -> [String] {
        let folder = world.folder.path + "/store/" + prefix
        let names = FileManager.default.enumerator(atPath: folder)?.compactMap { $0 as? String } ?? []
        return names.filter { $0.hasSuffix(".rec") }
    }

    /// `compass-dev sweep --as-of TIME` on the world's store: its JSON summary.
    static func sweep(_ world: CGIWorld, asOf: Date) throws -> [String: Any] {
        let result = try Executables.runCGI(
            "compass-dev", environment: world.configuration, arguments: ["sweep", "--as-of", asOf.formatted(.iso8601)])
        #expect(result.status == 0, "\(result.stderr)")
        return (try? JSONSerialization.jsonObject(with: Data(result.stdout))) as? [String: Any] ?? [:]
    }

    /// Abandoned connects leave nothing (their states are signed, not stored); a state used by a
    /// callback leaves a record for its lifetime, which a sweep then deletes.
    @Test func abandonedConnectsLeaveNothingAndUsedStatesAreSwept() throws {
        let world = try CGIWorld()
        for _ in 0..<200 {
            let connect = try world.run("connect", "GET", "/api/connect/meta", cookie: true)
            #expect(connect.status == 302)
        }
        #expect(Self.files(world, under: "meta/oauth-state").isEmpty)
        try world.connectWithPixel()
        #expect(Self.files(world, under: "meta/oauth-state").count == 1)
        // Still in the state's time now: an operator's sweep as of now keeps it.
        #expect(try Self.sweep(world, asOf: Date())["deleted"] as? Int == 0)
        let summary = try Self.sweep(world, asOf: Date().addingTimeInterval(12 * 60))
        #expect(summary["deleted"] as? Int == 1)
        #expect(Self.files(world, under: "meta/oauth-state").isEmpty)
    }

    @Test func sentMarkersAreGone49HoursAfterDelivery() throws {
        let world = try CGIWorld()
        try world.connectWithPixel()
        let now = Date().unixSeconds
        let events = (0..<10_000).map {
            #"{"eventName":"Lead","eventTime":\#(now - 60),"actionSource":"system_generated","eventId":"lead-\#($0)","userData":{"external_id":"crm-\#($0)"}}"#
        }
        let sent = try world.run(
            "send-event", "POST", "/api/connect/meta/events", body: #"{"events":["# + events.joined(separator: ",") + "]}")
        #expect(sent.status == 200, "\(sent.body.prefix(600))")
        #expect(sent.json["eventsReceived"] as? Int == 10_000)
        #expect(Self.files(world, under: "meta/sent").count == 10_000)
        let summary = try Self.sweep(world, asOf: Date().addingTimeInterval(49 * 3600))
        #expect((summary["deleted"] as? Int ?? 0) >= 10_000)
        #expect(Self.files(world, under: "meta/sent").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: world.folder.path + "/store/meta/sent/tenant_a"))
    }
}

extension DataLifecycleTests {
    /// A connected tenant with a pixel, events delivered, events queued through an outage and a
    /// dead letter: something under every key kind a tenant has.
    static func busyTenant() throws -> CGIWorld {
        let world = try CGIWorld()
        world.extra["CRON_SECRET"] = "cron-secret-0123456789abcdef"
        try world.connectWithPixel()
        #expect(try world.run("send-event", "POST", "/api/connect/meta/events", body: LighttpdHost.lead("delivered")).status == 200)
        try world.fault(.serverError, path: "2000101/events")
        #expect(try world.run("send-event", "POST", "/api/connect/meta/events", body: LighttpdHost.lead("queued")).status == 202)
        let store = try FileStore(root: world.folder.path + "/store")
        try world.storeDeadLetter("dead-1")
        for prefix in [
            "meta/integration/", "meta/credential/", "meta/outbox/tenant_a/", "meta/dead/tenant_a/", "meta/sent/tenant_a/",
            "meta/delivery-stats/", "meta/meta-users/",
        ] {
            #expect(try store.count(prefix: prefix) > 0, "nothing under \(prefix) to purge")
        }
        return world
    }

    /// Every file of the store whose path or content names `tenant`.
    static func traces(of tenant: String, in world: CGIWorld) -> [String] {
        let root = world.folder.path + "/store"
        let paths = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []
        return paths.filter { path in
            path.contains(tenant) || ((try? String(contentsOfFile: root + "/" + path, encoding: .utf8))?.contains(tenant) ?? false)
        }
    }

    /// Security review finding 6: disconnect left the tenant's outbox, dead letters, sent
    /// markers and delivery figures behind.
    @Test func disconnectLeavesNothingOfTheTenant() throws {
        let world = try Self.busyTenant()
        let disconnect = try world.run("disconnect", "POST", "/api/connect/meta/disconnect")
        #expect(disconnect.status == 200)
        #expect(Self.traces(of: "tenant_a", in: world) == [])
    }

    /// The whole store's text, every file.
    static func storeText(_ world: CGIWorld) -> String {
        let root = world.folder.path + "/store"
        let paths = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []
        return paths.map { $0 + "\n" + ((try? String(contentsOfFile: root + "/" + $0, encoding: .utf8)) ?? "") }.joined(separator: "\n")
    }

    @Test func throughAnOutageTheStoreHoldsNoPersonalDataAndAfterDisconnectNothing() throws {
        let world = try CGIWorld()
        world.extra["CRON_SECRET"] = "cron-secret-0123456789abcdef"
        try world.connectWithPixel()
        let personal = [
            "198.51.100.23", "2001:db8::77", "PrivateAgent/3.0 (X11)", "https://shop.example/checkout?email=max.pii@example.com",
            "max.pii@example.com", "ana.pii@example.com", "+44 20 7946 0991",
        ]
        let now = Date().unixSeconds
        let events = [
            #"{"eventName":"Purchase","eventTime":\#(now - 30),"actionSource":"website","eventId":"pii-1","eventSourceUrl":"\#(personal[3])","userData":{"em":"\#(personal[4])","client_ip_address":"\#(personal[0])","client_user_agent":"\#(personal[2])"},"customData":{"value":10,"currency":"EUR","contact":"\#(personal[5])"}}"#,
            #"{"eventName":"Lead","eventTime":\#(now - 20),"actionSource":"website","eventId":"pii-2","eventSourceUrl":"https://shop.example/lead","userData":{"ph":"\#(personal[6])","client_ip_address":"\#(personal[1])","client_user_agent":"\#(personal[2])"}}"#,
        ]
        try world.fault(.serverError, path: "2000101/events", remaining: 50)
        let queued = try world.run(
            "send-event", "POST", "/api/connect/meta/events", body: #"{"events":["# + events.joined(separator: ",") + "]}")
        #expect(queued.status == 202 && queued.json["queued"] as? Int == 2, "\(queued.body)")
        for value in personal { #expect(!Self.storeText(world).contains(value), "stored during the outage: \(value)") }
        try world.clearFaults()
        let cron = try world.run(
            "refresh-cron", "POST", "/api/cron/meta/refresh", tenant: nil,
            headers: ["Authorization": "Bearer cron-secret-0123456789abcdef"])
        #expect(cron.status == 200)
        #expect(Set(try world.deliveredEventIds()) == ["pii-1", "pii-2"])
        for value in personal { #expect(!Self.storeText(world).contains(value), "stored after delivery: \(value)") }
        #expect(try world.run("disconnect", "POST", "/api/connect/meta/disconnect").status == 200)
        #expect(Self.traces(of: "tenant_a", in: world) == [])
    }

    @Test func dataDeletionLeavesOnlyItsStatusRecord() throws {
        let world = try Self.busyTenant()
        let deletion = try world.run(
            "meta-webhooks", "POST", "/api/connect/meta/data-deletion", tenant: nil,
            headers: ["Content-Type": "application/x-www-form-urlencoded"],
            body: "signed_request="
                + QueryParameters.encode(DevTools.signedRequest(metaUserId: SandboxData.defaultUserId, appSecret: World.appSecret)),
            environment: ["CONTENT_TYPE": "application/x-www-form-urlencoded"])
        #expect(deletion.status == 200, "\(deletion.body)")
        #expect(Self.traces(of: "tenant_a", in: world) == [])
        #expect(Self.traces(of: SandboxData.defaultUserId, in: world) == [])
        let status = Self.files(world, under: "meta/deletion")
        #expect(status.count == 1)
    }
}
