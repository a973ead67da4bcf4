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

/// Several datasets per tenant, chosen by the event's `action_source`, and test event codes
/// that end (issue 34).
@Suite struct DatasetRoutingTests {
    static let store = SandboxData.offlineDataset

    func put(_ world: World, _ body: String) -> CGIResponse {
        world.run(SettingsHandler.self, world.request("PUT", "/api/connect/meta/settings", body: body))
    }

    func settings(_ world: World) -> [String: Any] {
        world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings")).json
    }

    func sale(_ id: String, _ world: World) -> String {
        #"{"eventName":"Purchase","eventTime":\#(world.clock.now.unixSeconds - 60),"actionSource":"physical_store","eventId":"\#(id)","#
            + #""userData":{"em":"a@b.co","ph":"+1 650 555 0100"},"customData":{"value":12.5,"currency":"EUR"}}"#
    }

    func codes(_ world: World, pixel: String = "2000101") -> [String: String] {
        var found: [String: String] = [:]
        for stored in world.delivered(pixel: pixel) {
            if let id = stored["event"]?["event_id"]?.string { found[id] = stored["test_event_code"]?.string ?? "-" }
        }
        return found
    }

    @Test func eachEventGoesToTheDatasetOfItsActionSource() throws {
        let world = World()
        world.readyTenant()
        let routed = put(world, #"{"datasets":{"physical_store":"\#(Self.store)"}}"#)
        #expect(routed.status == 200, "\(routed.text)")
        #expect(routed.json["datasets"] as? [String: String] == ["physical_store": Self.store])
        let sent = world.send(#"{"events":[\#(world.lead("w1")),\#(sale("s1", world)),\#(world.lead("w2"))]}"#)
        #expect(sent.status == 200 && sent.json["eventsReceived"] as? Int == 3, "\(sent.text)")
        #expect(world.deliveredIds() == ["w1", "w2"])
        #expect(world.deliveredIds(pixel: Self.store) == ["s1"])
        // One batch per dataset.
        #expect(world.transport.paths.filter { $0.hasSuffix("/events") }.count == 2)
        let status = try #require(settings(world)["datasetStatus"] as? [[String: Any]])
        #expect(status.map { $0["id"] as? String } == ["2000101", Self.store])
        #expect(status.map { $0["actionSources"] as? [String] } == [["default"], ["physical_store"]])
        #expect(status.map { $0["eventsSent"] as? Int } == [2, 1])
        #expect(status.map { $0["status"] as? String } == ["available", "available"])
        // A dry run names the dataset of each body.
        let dry = world.send(#"{"events":[\#(world.lead("d1")),\#(sale("d2", world))]}"#, query: "?dryRun=1")
        #expect(dry.json["datasetIds"] as? [String] == ["2000101", Self.store])
        let bodies = try #require(dry.json["payloads"] as? [[String: Any]])
        #expect(bodies.map { ($0["data"] as? [[String: Any]])?.first?["event_id"] as? String } == ["d1", "d2"])
        // null removes the route: a store's sale goes to the default pixel again.
        let removed = put(world, #"{"datasets":{"physical_store":null}}"#)
        #expect(removed.status == 200 && removed.json["datasets"] == nil)
        #expect(world.send(sale("s2", world)).status == 200)
        #expect(world.deliveredIds() == ["w1", "w2", "s2"])
    }

    @Test func aDatasetMustBeOneThePickerLists() {
        let world = World()
        world.readyTenant()
        #expect(put(world, #"{"datasets":{"shop":"\#(Self.store)"}}"#).errorCode == "invalid_action_source")
        #expect(put(world, #"{"datasets":{"physical_store":"abc"}}"#).errorCode == "invalid_dataset_id")
        let unknown = put(world, #"{"datasets":{"physical_store":"9999999"}}"#)
        #expect(unknown.status == 422 && unknown.errorCode == "unknown_dataset")
        #expect(put(world, #"{"datasets":"3000903"}"#).errorCode == "invalid_json")
        #expect(settings(world)["datasets"] == nil)
        // The business's datasets (not attached to the account) are choosable, as in the picker.
        #expect(put(world, #"{"datasets":{"business_messaging":"\#(SandboxData.businessOnlyPixel)"}}"#).status == 200)
        // Another ad account clears the routes with the pixel.
        let moved = put(world, #"{"adAccountId":"act_1000002"}"#)
        #expect(moved.status == 200 && moved.json["datasets"] == nil && moved.json["pixelId"] == nil)
    }

    /// With routes but no default pixel, an event of a source without a route is refused with
    /// the reason (never sent elsewhere); the routed ones go.
    @Test func anEventWithNoDatasetIsRejectedWithTheReason() throws {
        let world = World()
        world.readyTenant()
        #expect(put(world, #"{"datasets":{"physical_store":"\#(Self.store)"},"pixelId":null}"#).status == 200)
        let mixed = world.send(#"{"events":[\#(world.lead("w1")),\#(sale("s1", world))]}"#)
        #expect(mixed.status == 207, "\(mixed.text)")
        let rejected = try #require(mixed.json["rejected"] as? [[String: Any]])
        #expect(rejected.map { $0["code"] as? String } == ["no_dataset"] && rejected.first?["index"] as? Int == 0)
        #expect(world.deliveredIds(pixel: Self.store) == ["s1"] && world.deliveredIds().isEmpty)
        // Neither a pixel nor a dataset: the request is refused as a whole.
        #expect(put(world, #"{"datasets":null}"#).status == 200)
        #expect(world.send(sale("s2", world)).errorCode == "pixel_not_configured")
    }

    @Test func anUnreachableDatasetHoldsOnlyItsOwnEvents() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        #expect(put(world, #"{"datasets":{"physical_store":"\#(Self.store)"}}"#).status == 200)
        world.queueFault(.objectUnavailable, path: "\(Self.store)/events", count: 100)
        let first = world.send(#"{"events":[\#(world.lead("w1")),\#(sale("s1", world))]}"#)
        #expect(first.status == 202 && first.json["eventsReceived"] as? Int == 1 && first.json["queued"] as? Int == 1)
        let status = try #require(settings(world)["datasetStatus"] as? [[String: Any]])
        #expect(status.map { $0["status"] as? String } == ["available", "unavailable"])
        #expect(settings(world)["pixelStatus"] as? String == "available")
        // The website's events keep flowing while the store's wait.
        let second = world.send(#"{"events":[\#(sale("s2", world)),\#(world.lead("w2"))]}"#)
        #expect(second.json["eventsReceived"] as? Int == 1 && second.json["queued"] as? Int == 1)
        #expect(world.deliveredIds() == ["w1", "w2"])
        let held = world.drain().outbox
        #expect(held.sent == 0 && held.retried == 2 && held.dead == 0, "\(held)")
        // Shared again: the store's events go at the next try, an hour on.
        _ = world.sandbox.handle(.init(method: "DELETE", path: "/sandbox/faults", query: QueryParameters()))
        world.clock.advance(3601)
        #expect(world.drain().outbox.sent == 2)
        #expect(Set(world.deliveredIds(pixel: Self.store)) == ["s1", "s2"])
        let after = try #require(settings(world)["datasetStatus"] as? [[String: Any]])
        #expect(after.map { $0["status"] as? String } == ["available", "available"])
    }

    /// The drain sends each dataset's queued events apart: a dataset Meta refuses holds its
    /// own (attempts untouched), and a failure that stops the drain charges no attempt to
    /// the events of datasets it never tried. Compass's notice and the gauge name the dataset.
    @Test func theDrainSendsEachDatasetsQueuedEventsApart() throws {
        let world = World(environment: [
            "CRON_SECRET": "cron-secret-0123456789abcdef", "COMPASS_WEBHOOK_URL": "https://compass.example/meta-notices",
            "COMPASS_WEBHOOK_SECRET": "notice-secret-0123456789abcdef",
        ])
        world.readyTenant()
        #expect(put(world, #"{"datasets":{"physical_store":"\#(Self.store)"}}"#).status == 200)
        // Meta down: both queued (the store's group never tried).
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        let queued = world.send(#"{"events":[\#(world.lead("w1")),\#(sale("s1", world))]}"#)
        #expect(queued.status == 202 && queued.json["queued"] as? Int == 2)
        func attempts() throws -> [String: Int] {
            var found: [String: Int] = [:]
            for (_, value) in try world.store.list(prefix: RecordKey.outboxPrefix("tenant_a"), after: nil, limit: 10).entries {
                let entry = try JSON.decode(OutboxEntry.self, from: value.value)
                found[entry.actionSource] = entry.attempts
            }
            return found
        }
        // Meta fails the drain's first batch (whichever dataset comes first in the outbox's
        // order): the other dataset's event, not tried, keeps its attempts.
        world.queueFault(.serverError, count: 1)
        world.clock.advance(61)
        let stopped = world.drain().outbox
        #expect(stopped.sent == 0 && stopped.retried == 2, "\(stopped)")
        let charged = try attempts()
        #expect(charged.values.sorted() == [0, 1], "\(charged)")
        // The store's dataset refused: the pixel's event goes, the store's waits an hour, uncharged.
        world.queueFault(.objectUnavailable, path: "\(Self.store)/events", count: 100)
        world.clock.advance(180)
        let held = world.drain().outbox
        #expect(held.sent == 1 && held.retried == 1, "\(held)")
        #expect(world.deliveredIds() == ["w1"])
        #expect(try attempts() == ["physical_store": charged["physical_store"]!])
        let notices = try world.store.list(prefix: RecordKey.noticesPrefix, after: nil, limit: 10).entries.compactMap {
            try? JSON.decode(CompassNotice.self, from: $0.value.value)
        }
        #expect(notices.map(\.dataset) == [Self.store])
        let gauge = MetricSeries(MetricCatalog.pixelsUnavailable)
        #expect(try MetricsHandler(dependencies: world.dependencies).values()[gauge] == 1)
        // The route removed: its problem goes with it, and the gauge down by one.
        #expect(put(world, #"{"datasets":{"physical_store":null}}"#).status == 200)
        #expect(try MetricsHandler(dependencies: world.dependencies).values()[gauge] == 0)
    }

    /// A full outbox met by a later destination's events: a 503, and no event of the request
    /// left claimed (its retry is sent, not answered as a duplicate nor made to wait).
    @Test func aFullOutboxLeavesNoEventClaimed() throws {
        let world = World(environment: ["OUTBOX_MAX_EVENTS": "1"])
        world.readyTenant()
        #expect(put(world, #"{"datasets":{"physical_store":"\#(Self.store)"}}"#).status == 200)
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        let full = world.send(#"{"events":[\#(world.lead("w1")),\#(sale("s1", world)),\#(sale("s2", world))]}"#)
        #expect(full.status == 503 && full.errorCode == "outbox_full", "\(full.text)")
        // No state record is left: not the refused events' claims, nor one for the queued event.
        #expect(try world.store.count(prefix: RecordKey.sentPrefix("tenant_a")) == 0)
        #expect(try world.store.count(prefix: RecordKey.outboxPrefix("tenant_a")) == 1)
        let again = world.send(#"{"events":[\#(sale("s1", world)),\#(sale("s2", world))]}"#)
        #expect(again.status == 200 && again.json["eventsReceived"] as? Int == 2, "\(again.text)")
    }

    /// A queued event keeps the code it was accepted with: a test event stays one after the
    /// tenant's code ended, and a real event queued before a code was set stays real.
    @Test func aQueuedEventKeepsTheCodeItWasAcceptedWith() {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        #expect(world.send(world.lead("real")).status == 202)
        let end = world.clock.now.addingTimeInterval(120).formatted(.iso8601)
        #expect(put(world, #"{"testEventCode":"TEN1","testEventCodeExpiresAt":"\#(end)"}"#).status == 200)
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        #expect(world.send(world.lead("test")).status == 202)
        world.clock.advance(180)
        #expect(world.drain().outbox.sent == 2)
        #expect(codes(world) == ["real": "-", "test": "TEN1"])
    }

    @Test func aRequestsOwnTestCodeAppliesToThatRequestOnly() {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        #expect(world.send(world.lead("q"), query: "?testEventCode=REQ1").status == 200)
        #expect(world.send(#"{"events":[\#(world.lead("b"))],"testEventCode":"REQ2"}"#).status == 200)
        #expect(world.send(world.lead("none")).status == 200)
        // Deduplication does not look at the code: sent as a test event, it is a duplicate after.
        #expect(world.send(world.lead("q")).json["duplicates"] as? Int == 1)
        #expect(put(world, #"{"testEventCode":"TEN1"}"#).status == 200)
        // A request's own code wins over the tenant's.
        #expect(world.send(world.lead("own"), query: "?testEventCode=REQ3").status == 200)
        #expect(world.send(world.lead("tenant")).status == 200)
        // Queued with its request's code, delivered with it.
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        #expect(world.send(world.lead("later"), query: "?testEventCode=REQ4").status == 202)
        #expect(world.drain().outbox.sent == 1)
        #expect(
            codes(world) == ["q": "REQ1", "b": "REQ2", "none": "-", "own": "REQ3", "tenant": "TEN1", "later": "REQ4"])
        // The dry run shows the code it would send.
        let dry = world.send(world.lead("dry"), query: "?dryRun=1&testEventCode=REQ5")
        #expect((dry.json["payloads"] as? [[String: Any]])?.first?["test_event_code"] as? String == "REQ5")
        #expect(world.send(#"{"events":[\#(world.lead("x"))],"testEventCode":"A"}"#, query: "?testEventCode=B").status == 400)
        #expect(world.send(world.lead("y"), query: "?testEventCode=not%20a%20code").errorCode == "invalid_test_event_code")
        #expect(world.send(#"{"events":[\#(world.lead("z"))],"testEventCode":7}"#).errorCode == "invalid_test_event_code")
    }

    @Test func aTenantsTestCodeEndsAndRefreshCronClearsIt() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        let now = world.clock.now
        let set = put(world, #"{"testEventCode":"TEN1"}"#)
        #expect(set.json["testEventCodeExpiresAt"] as? String == now.addingTimeInterval(86_400).formatted(.iso8601))
        let end = now.addingTimeInterval(3600).formatted(.iso8601)
        let chosen = put(world, #"{"testEventCode":"TEN2","testEventCodeExpiresAt":"\#(end)"}"#)
        #expect(chosen.status == 200 && chosen.json["testEventCodeExpiresAt"] as? String == end)
        #expect(put(world, #"{"testEventCodeExpiresAt":"\#(now.addingTimeInterval(-60).formatted(.iso8601))"}"#).status == 422)
        #expect(put(world, #"{"testEventCodeExpiresAt":"\#(now.addingTimeInterval(31 * 86_400).formatted(.iso8601))"}"#).status == 422)
        #expect(put(world, #"{"testEventCodeExpiresAt":null}"#).status == 400)
        #expect(put(world, #"{"testEventCode":null,"testEventCodeExpiresAt":"\#(end)"}"#).status == 400)
        #expect(world.send(world.lead("during")).status == 200)
        // Past its end the code is not sent, even before refresh-cron has cleared it.
        world.clock.advance(3601)
        // Not shown either, though refresh-cron has not cleared it yet.
        #expect(settings(world)["testEventCode"] == nil)
        #expect(world.integration()?.config.testEventCode == "TEN2")
        #expect(world.send(world.lead("after")).status == 200)
        #expect(codes(world) == ["during": "TEN2", "after": "-"])
        #expect(world.drain().testCodes.cleared == 1)
        #expect(settings(world)["testEventCode"] == nil && settings(world)["testEventCodeExpiresAt"] == nil)
        #expect(world.drain().testCodes == TestEventCodeExpiry.Summary())
        // An end with no code to end.
        #expect(put(world, #"{"testEventCodeExpiresAt":"\#(world.clock.now.addingTimeInterval(60).formatted(.iso8601))"}"#).status == 422)
    }

    @Test func anOfflineDatasetsFiguresComeFromMetasOfflineQuality() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        #expect(put(world, #"{"datasets":{"physical_store":"\#(Self.store)"}}"#).status == 200)
        #expect(world.send(#"{"events":[\#(world.lead("w1")),\#(sale("s1", world))]}"#).status == 200)
        #expect(world.drain().quality.fetched == 2)
        let asked = world.transport.requests.withLock { $0.map(\.url) }.filter { $0.contains("/dataset_quality?") }
        #expect(asked.count == 2)
        #expect(asked.contains { $0.contains("dataset_id=\(Self.store)") && $0.contains("fields=offline") })
        // The strict sandbox took both (it answers 400 to a field Meta does not define).
        let calls = world.sandbox.handle(.init(method: "GET", path: "/sandbox/calls", query: QueryParameters()))
        let statuses = (try JSON.decode(JSONValue.self, from: calls.body))["calls"]?.array ?? []
        #expect(statuses.filter { $0["path"]?.string == "dataset_quality" }.map { $0["status"]?.integer } == [200, 200])
        let status = try #require(settings(world)["datasetStatus"] as? [[String: Any]])
        let offline = try #require((status[1]["eventMatchQuality"] as? [String: Any])?["offline"] as? [[String: Any]])
        #expect(offline.first?["eventName"] as? String == "Purchase")
        #expect((offline.first?["composite"] as? [String: Any])?["score"] as? Double == 8)
        #expect(offline.first?["emailCoverage"] as? Double == 100)
        let web = try #require((status[0]["eventMatchQuality"] as? [String: Any])?["events"] as? [[String: Any]])
        #expect(web.map { $0["eventName"] as? String } == ["Lead"])
    }

    /// An integration, its delivery figures and its quality figures as stored before datasets
    /// (and before test codes ended), read by this build: events go to the pixel with the code,
    /// settings shows the figures, and refresh-cron gives the code 24 hours.
    @Test func recordsFromBeforeDatasetsKeepWorking() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        let stored = try #require(world.integration())
        let accounts = String(decoding: JSON.encode(stored.config.adAccounts), as: UTF8.self)
        let before =
            #"{"config":{"adAccountId":"act_1000001","adAccounts":\#(accounts),"pixelId":"2000101","testEventCode":"OLD1"},"#
            + #""connectedAt":"2026-11-01T10:00:00Z","grantedScopes":["ads_management","ads_read","business_management"],"#
            + #""metaUserId":"\#(stored.metaUserId)","missingScopes":[],"provider":"meta","status":"connected","#
            + #""tenantId":"tenant_a","tokenType":"user","updatedAt":"2026-11-01T10:00:00Z"}"#
        try world.store.put(RecordKey.integration("tenant_a"), Array(before.utf8))
        try world.store.put(
            RecordKey.deliveryStats("tenant_a"),
            Array(#"{"eventsSent":7,"eventsWithKey":{"em":7},"lastDeliveryAt":"2026-11-02T10:00:00Z"}"#.utf8))
        try world.store.put(
            RecordKey.quality("tenant_a"),
            Array(
                #"{"events":[{"eventName":"Lead","compositeScore":6.5,"matchKeyCoverage":{"email":100}}],"fetchedAt":"\#(world.clock.now.formatted(.iso8601))","pixelId":"2000101"}"#
                    .utf8))
        #expect(world.send(sale("old-sale", world)).status == 200)
        #expect(codes(world) == ["old-sale": "OLD1"])
        let view = settings(world)
        #expect(view["testEventCode"] as? String == "OLD1" && view["testEventCodeExpiresAt"] == nil)
        #expect((view["eventMatchQuality"] as? [String: Any])?["pixelId"] as? String == "2000101")
        let status = try #require(view["datasetStatus"] as? [[String: Any]])
        #expect(status.map { $0["id"] as? String } == ["2000101"])
        // The pixel's figures from before carried on as its own.
        #expect(status[0]["eventsSent"] as? Int == 8 && (status[0]["eventMatchQuality"] as? [String: Any]) != nil)
        #expect((view["delivery"] as? [String: Any])?["eventsSent"] as? Int == 8)
        // refresh-cron gives the old code 24 hours, then clears it.
        _ = world.drain()
        let ends = try #require(world.integration()?.config.testEventCodeExpiresAt)
        #expect(ends == world.clock.now.addingTimeInterval(86_400))
        world.clock.advance(86_400 + 60)
        #expect(world.drain().testCodes.cleared == 1)
        #expect(world.integration()?.config.testEventCode == nil)
    }
}
