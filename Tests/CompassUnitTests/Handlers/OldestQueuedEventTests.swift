import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// The age of the oldest queued event: since when the outbox holding it has held events, to the
/// minute, 0 once every outbox is empty again.
@Suite struct OldestQueuedEventTests {
    static func age(_ world: World) throws -> Double? {
        try MetricsHandler(dependencies: world.dependencies).values()[MetricSeries(MetricCatalog.oldestQueuedAge)]
    }

    @Test func itGrowsWhileEventsWaitAndIsZeroOnceDrained() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        #expect(try Self.age(world) == 0)
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        #expect(world.send(world.batch(["o1", "o2"])).status == 202)
        world.clock.advance(7200)
        let waited = try #require(try Self.age(world))
        #expect(waited >= 7200 && waited < 7260, "\(waited)")
        // More events into the same outbox: still the first one's age.
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        #expect(world.send(world.batch(["o3"])).status == 202)
        #expect(try Self.age(world) ?? 0 >= 7200)
        #expect(world.drain().outbox.sent == 3)
        #expect(try Self.age(world) == 0)
        #expect(try world.store.count(prefix: WaitingSince.prefix) == 0)
        // Queued again, then the tenant disconnects: nothing waits, nothing is left behind.
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        #expect(world.send(world.batch(["o4"])).status == 202)
        world.clock.advance(600)
        #expect(try Self.age(world) ?? 0 >= 600)
        #expect(world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect")).status == 200)
        #expect(try Self.age(world) == 0)
        #expect(try world.store.count(prefix: WaitingSince.prefix) == 0)
    }
}
