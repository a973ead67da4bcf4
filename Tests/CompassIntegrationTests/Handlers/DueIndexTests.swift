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

/// The due index (DESIGN section 5) on every backend: entries in time order, only what is due.
@Suite struct DueIndexTests {
    @Test(arguments: StoreConformanceTests.backends)
    func listsWhatIsDueInTimeOrderAndNothingLater(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let store = try make().store
        let index = DueIndex(store: store)
        let now = Date(timeIntervalSince1970: 1_790_000_000)
        // Added out of order, across minutes, some in the future.
        let plan: [(String, TimeInterval)] = [("late", 3600), ("b", -60), ("a", -7200), ("c", -60), ("now", 0), ("soon", 61)]
        for (tenant, offset) in plan { try index.add(tenant, at: now.addingTimeInterval(offset)) }
        let due = try index.due(asOf: now, limit: 10)
        #expect(due.entries.map(\.tenant) == ["a", "b", "c", "now"])
        #expect(!due.more)
        #expect(try index.countDue(asOf: now) == 4)
        // Paged: a limit, and going on after the last key taken.
        let first = try index.due(asOf: now, limit: 3)
        #expect(first.entries.map(\.tenant) == ["a", "b", "c"] && first.more)
        let rest = try index.due(asOf: now, after: first.entries.last?.key, limit: 3)
        #expect(rest.entries.map(\.tenant) == ["now"] && !rest.more)
        // An hour later the late one is due too; the entries of moved tenants are gone.
        index.remove("a", at: now.addingTimeInterval(-7200))
        index.remove("b", at: now.addingTimeInterval(-60), keeping: now.addingTimeInterval(-30))
        #expect(try index.due(asOf: now.addingTimeInterval(3600), limit: 10).entries.map(\.tenant) == ["b", "c", "now", "soon", "late"])
        // Keys sort by time across a change in the number of digits of the minute.
        #expect(
            DueIndex.key("x", at: Date(timeIntervalSince1970: 9_999_999 * 60))
                < DueIndex.key("x", at: Date(timeIntervalSince1970: 10_000_000 * 60)))
        #expect(DueIndex.entry(of: DueIndex.key("t_1", at: now))?.tenant == "t_1")
    }

    /// A key under the index's prefix that is not an entry (written by hand) is removed, not
    /// left to stop the listing.
    @Test(arguments: StoreConformanceTests.backends)
    func aKeyThatIsNotAnEntryIsRemoved(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let store = try make().store
        try store.put("meta/due/junk", [1], ttl: nil)
        try DueIndex(store: store).add("t1", at: Date(timeIntervalSince1970: 1_000))
        #expect(try DueIndex(store: store).due(asOf: Date(timeIntervalSince1970: 2_000), limit: 5).entries.map(\.tenant) == ["t1"])
        #expect(try store.get("meta/due/junk") == nil)
    }

    /// The token job on each backend: connected tenants come due a day after their connect
    /// (checked then), a disconnected tenant leaves no entry, an entry of a tenant that is gone
    /// is dropped without a Graph call, and right after a run nothing is due.
    @Test(arguments: StoreConformanceTests.backends)
    func aRunTakesWhatIsDueOnEveryBackend(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let backend = try make()
        let world = World()
        world.storeOverride = backend.store
        for (index, tenant) in ["d1", "d2", "d3"].enumerated() { world.connectTenant(tenant, user: "1000000000\(3000 + index)") }
        #expect(world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect", tenant: "d3")).status == 200)
        // An entry left behind by a writer that died (of a tenant since gone): dropped when due.
        try DueIndex(store: backend.store).add("ghost", at: world.clock.now.addingTimeInterval(DueIndex.period))
        let refresher = TokenRefresher(dependencies: world.dependencies)
        #expect(try refresher.run().integrations == 0, "nothing is due right after connecting")
        world.clock.advance(DueIndex.period - DueIndex.jitter - 120)
        #expect(try refresher.run().integrations == 0, "nothing is due before the day is nearly over")
        world.clock.advance(2 * DueIndex.jitter + 240)
        let checks = world.transport.paths.filter { $0.hasSuffix("debug_token") }.count
        let summary = try refresher.run()
        #expect(summary.checked == 2 && summary.stale == 1 && summary.integrations == 3, "\(summary)")
        #expect(world.transport.paths.filter { $0.hasSuffix("debug_token") }.count == checks + 2)
        #expect(try refresher.run().integrations == 0)
        // Each connected tenant has exactly one entry, a day or so ahead.
        let entries = try backend.store.list(prefix: DueIndex.prefix, after: nil, limit: 10).entries.map(\.key)
        #expect(entries.compactMap { DueIndex.entry(of: $0)?.tenant }.sorted() == ["d1", "d2"])
    }
}
