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

    /// The sweep is the last work of a run and takes no time past the run's budget
    /// (REFRESH_BUDGET_SECONDS): a run whose token job spends the budget sweeps nothing; the
    /// next run does.
    @Test func aRunPastItsBudgetSweepsNothingAndTheNextDoes() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef", "REFRESH_BUDGET_SECONDS": "5"])
        world.readyTenant()
        for index in 0..<4 { try world.store.put("meta/oauth-state/b\(index)", [1], ttl: 600) }
        world.clock.advance(2 * 86_400)  // the states have expired; the tenant's daily check is due
        // The token check takes the run past its budget (the test clock moves 10 s on the call).
        let clock = world.clock
        world.transport.intercept.withLock {
            $0 = { request in
                if request.url.contains("debug_token") { clock.advance(10) }
                return nil
            }
        }
        let spent = try RefreshCronHandler(dependencies: world.dependencies).run()
        #expect(spent.budgetSpent && spent.tokens.checked + spent.tokens.renewed >= 1, "\(spent)")
        #expect(spent.sweep.deleted == 0 && spent.sweep.visited == 0, "\(spent.sweep)")
        world.transport.intercept.withLock { $0 = nil }
        let next = try RefreshCronHandler(dependencies: world.dependencies).run()
        #expect(next.sweep.deleted >= 4, "\(next.sweep)")
        #expect(try world.store.list(prefix: "meta/oauth-state/", after: nil, limit: 10).entries.isEmpty)
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
