import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage

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

    @Test func aSweepDeletesTheStatesOfAbandonedConnects() throws {
        let world = try CGIWorld()
        for _ in 0..<200 {
            let connect = try world.run("connect", "GET", "/api/connect/meta", cookie: true)
            #expect(connect.status == 302)
        }
        #expect(Self.files(world, under: "meta/oauth-state").count == 200)
        // Still valid now: an operator's sweep as of now keeps them.
        #expect(try Self.sweep(world, asOf: Date())["deleted"] as? Int == 0)
        let summary = try Self.sweep(world, asOf: Date().addingTimeInterval(11 * 60))
        #expect(summary["deleted"] as? Int == 200)
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
            "meta/delivery-stats/", "meta/meta-user/",
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

/// refresh-cron's share of the sweep: bounded per run, going on where the last run stopped.
@Suite struct StoreSweepTests {
    @Test func eachCronRunSweepsABoundedShareAndGoesOnWhereTheLastStopped() throws {
        let world = World()
        for index in 0..<25 { try world.store.put("meta/oauth-state/s\(index)", [1], ttl: 600) }
        try world.store.put("meta/zz-keep/x", Array("{}".utf8))
        world.clock.advance(601)
        let sweep = StoreSweep(store: world.store)
        let first = try sweep.runShare(asOf: world.clock.now, budget: 10)
        #expect(first.visited == 10 && first.deleted == 10 && !first.wrapped)
        let second = try sweep.runShare(asOf: world.clock.now, budget: 10)
        #expect(second.deleted == 10 && !second.wrapped)
        let third = try sweep.runShare(asOf: world.clock.now, budget: 10)
        #expect(third.deleted == 5 && third.wrapped)
        #expect(try world.store.list(prefix: "meta/oauth-state/", after: nil, limit: 50).entries.isEmpty)
        #expect(try world.store.get("meta/zz-keep/x") != nil)
    }

    /// A sweep goes on run after run until it has been through the store, then rests for
    /// `StoreSweep.interval` (six hours).
    @Test func aSweepThatReachedTheEndRestsSixHours() throws {
        let world = World()
        for index in 0..<5 { try world.store.put("meta/oauth-state/r\(index)", [1], ttl: 600) }
        world.clock.advance(601)
        let sweep = StoreSweep(store: world.store)
        let first = try #require(try sweep.runShareIfDue(asOf: world.clock.now, budget: 3))
        #expect(!first.wrapped && first.deleted == 3)
        // Run after run (the sweep's own records count too) until the end of the store.
        var deleted = first.deleted
        var runs = 1
        while runs < 10, let share = try sweep.runShareIfDue(asOf: world.clock.now, budget: 3) {
            deleted += share.deleted
            runs += 1
            if share.wrapped { break }
        }
        #expect(deleted == 5 && runs > 1 && runs < 10, "\(runs) runs")
        world.clock.advance(StoreSweep.interval - 60)
        #expect(try sweep.runShareIfDue(asOf: world.clock.now, budget: 3) == nil)
        world.clock.advance(60)
        #expect(try sweep.runShareIfDue(asOf: world.clock.now, budget: 3) != nil)
    }

    @Test func refreshCronReportsWhatItSwept() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        for index in 0..<3 { try world.store.put("meta/lease/refresh/dead\(index)", [1], ttl: 120) }
        world.clock.advance(121)
        let summary = try RefreshCronHandler(dependencies: world.dependencies).run()
        #expect(summary.sweep.deleted == 3)
        #expect(summary.sweep.wrapped)
    }
}

/// What the file store holds per tenant and per queued event, measured (docs/storage.md).
@Suite struct StorageFootprintTests {
    static func bytes(under folder: String) -> (bytes: Int, files: Int) {
        let paths = FileManager.default.enumerator(atPath: folder)?.compactMap { $0 as? String } ?? []
        var total = 0
        var files = 0
        for path in paths where path.hasSuffix(".rec") {
            total += (try? FileManager.default.attributesOfItem(atPath: folder + "/" + path)[.size] as? Int) ?? 0
            files += 1
        }
        return (total, files)
    }

    @Test func aTenantAndAQueuedEventTakeAFewKilobytes() throws {
        let world = try CGIWorld()
        try world.connectWithPixel()
        #expect(try world.run("send-event", "POST", "/api/connect/meta/events", body: LighttpdHost.lead("footprint-sent")).status == 200)
        let root = world.folder.path + "/store"
        let tenant = Self.bytes(under: root)
        try world.fault(.serverError, path: "2000101/events")
        let batch = (0..<100).map { "footprint-\($0)" }
        #expect(try world.run("send-event", "POST", "/api/connect/meta/events", body: LighttpdHost.batch(batch)).status == 202)
        let queued = Self.bytes(under: root + "/meta/outbox")
        let perEvent = queued.bytes / max(queued.files, 1)
        print(
            "storage footprint: a connected tenant with one delivered event \(tenant.bytes) bytes in \(tenant.files) records; a queued event \(perEvent) bytes"
        )
        #expect(queued.files == 100)
        #expect(tenant.bytes < 8 * 1024)
        #expect(perEvent < 2 * 1024)
    }
}

/// A disconnect that races a send or a drain held at Meta's call leaves nothing of the tenant:
/// no outbox entry, dead letter, sent marker or delivery figure is written after the purge began.
@Suite struct PurgeRaceTests {
    /// Every record of the world's store naming the tenant, in its key or its content (an
    /// emptied folder is no record: the sweep removes those).
    func traces(_ world: World, _ tenant: String = "tenant_a") -> [String] {
        let root = world.folder.path + "/store"
        let paths = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []
        return paths.filter { path in
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isFolder), !isFolder.boolValue else {
                return false
            }
            return path.contains(tenant) || ((try? String(contentsOfFile: root + "/" + path, encoding: .utf8))?.contains(tenant) ?? false)
        }
    }

    /// Holds the next events call at Meta until `release`, answering it with `answer` (nil: the sandbox's).
    final class Gate: @unchecked Sendable {
        let arrived = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let held = Mutex(false)
        func install(on world: World, answer: HTTPResponse?) {
            world.transport.intercept.withLock {
                $0 = { [self] request in
                    guard request.url.contains("/events"),
                        held.withLock({
                            let first = !$0
                            $0 = true
                            return first
                        })
                    else { return nil }
                    arrived.signal()
                    release.wait()
                    return answer
                }
            }
        }
    }

    func disconnect(_ world: World) {
        #expect(world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect")).status == 200)
    }

    @Test(arguments: [false, true])
    func aSendHeldAtMetaWhileTheTenantDisconnectsLeavesNothing(metaFails: Bool) throws {
        let world = World()
        world.readyTenant()
        let gate = Gate()
        let failure = HTTPResponse(
            status: 500, headers: ["content-type": "application/json"],
            body: Array(#"{"error":{"message":"down","type":"OAuthException","code":2,"is_transient":true}}"#.utf8))
        let accepted = HTTPResponse(
            status: 200, headers: ["content-type": "application/json"],
            body: Array(#"{"events_received":2,"fbtrace_id":"held"}"#.utf8))
        gate.install(on: world, answer: metaFails ? failure : accepted)
        let answered = DispatchSemaphore(value: 0)
        let status = Mutex(0)
        DispatchQueue.global().async {
            status.withLock { $0 = world.send(world.batch(["r1", "r2"])).status }
            answered.signal()
        }
        gate.arrived.wait()
        disconnect(world)
        gate.release.signal()
        answered.wait()
        // Sent: Meta has the events and the answer says so; failed: nothing was stored, 404.
        #expect(status.withLock { $0 } == (metaFails ? 404 : 200))
        #expect(traces(world) == [], "\(traces(world))")
    }

    @Test func aDrainHeldAtMetaWhileTheTenantDisconnectsLeavesNothing() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        world.queueFault(.serverError, count: 1)
        #expect(world.send(world.batch(["d1", "d2", "d3"])).status == 202)
        world.clock.advance(120)
        let gate = Gate()
        gate.install(
            on: world,
            answer: HTTPResponse(
                status: 500, headers: ["content-type": "application/json"],
                body: Array(#"{"error":{"message":"down","type":"OAuthException","code":2,"is_transient":true}}"#.utf8)))
        let drained = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = world.drain()
            drained.signal()
        }
        gate.arrived.wait()
        disconnect(world)
        gate.release.signal()
        drained.wait()
        // Whatever the held drain left is removed by the next run, which does not come back.
        world.transport.intercept.withLock { $0 = nil }
        world.clock.advance(7200)
        _ = world.drain()
        #expect(traces(world) == [], "\(traces(world))")
        world.clock.advance(7200)
        #expect(world.drain().outbox.tenants == 0)
    }

    /// A tenant that connects again after a disconnect queues its events as before.
    @Test func aNewConnectionLiftsThePurgeMarker() throws {
        let world = World()
        world.readyTenant()
        disconnect(world)
        world.readyTenant()
        world.queueFault(.serverError, count: 1)
        #expect(world.send(world.batch(["n1"])).status == 202)
    }
}
