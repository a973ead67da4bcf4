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
