import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// The figures operators watch: exact across writers, one write a request, folded by
/// refresh-cron, and read at a cost that does not grow with the tenants.
@Suite struct MetricsLedgerTests {
    /// Eight writers at once (as eight processes would), 50 requests each: every count is there.
    @Test func writersAtOnceLoseNoCount() throws {
        let world = World()
        let ledger = MetricsLedger(store: world.store)
        let clock = world.clock
        DispatchQueue.concurrentPerform(iterations: 8) { writer in
            for request in 0..<50 {
                let metrics = Metrics()
                metrics.add(MetricCatalog.eventsSent, [:], 2)
                metrics.add(MetricCatalog.eventsRejected, ["reason": writer % 2 == 0 ? "invalid" : "meta"])
                metrics.add(MetricCatalog.eventsWaiting, [:], request % 2 == 0 ? 1 : -1)
                #expect(throws: Never.self) { try ledger.flush(metrics, now: clock.now, random: SecureRandom()) }
            }
        }
        let values = try ledger.read()
        #expect(values[MetricSeries(MetricCatalog.eventsSent)] == 800)
        #expect(values[MetricSeries(MetricCatalog.eventsRejected, ["reason": "invalid"])] == 200)
        #expect(values[MetricSeries(MetricCatalog.eventsRejected, ["reason": "meta"])] == 200)
        #expect(values[MetricSeries(MetricCatalog.eventsWaiting)] == 0)
        // At most one shard a bucket for the minute.
        #expect(try world.store.count(prefix: MetricsLedger.shardPrefix) <= MetricsLedger.buckets)
    }

    /// Shards older than a quarter of an hour go into the total and are deleted; the sums stay.
    @Test func foldingKeepsTheSumsAndDeletesTheShards() throws {
        let world = World()
        let ledger = MetricsLedger(store: world.store)
        func add(_ amount: Int) throws {
            let metrics = Metrics()
            metrics.add(MetricCatalog.eventsQueued, [:], amount)
            try ledger.flush(metrics, now: world.clock.now, random: SecureRandom())
        }
        try add(3)
        world.clock.advance(120)
        try add(4)
        #expect(try ledger.fold(now: world.clock.now) == 0)  // nothing a quarter of an hour old yet
        world.clock.advance(Double(MetricsLedger.foldAfterMinutes) * 60)
        try add(5)
        #expect(try ledger.fold(now: world.clock.now) == 2)
        #expect(try ledger.read()[MetricSeries(MetricCatalog.eventsQueued)] == 12)
        #expect(try world.store.count(prefix: MetricsLedger.shardPrefix) == 1)
        // A fold with nothing new changes nothing.
        #expect(try ledger.fold(now: world.clock.now) == 0)
        #expect(try ledger.read()[MetricSeries(MetricCatalog.eventsQueued)] == 12)
    }

    /// A failed write gives the changes back, to go with the next request's.
    @Test func aFailedWriteKeepsTheChanges() throws {
        let metrics = Metrics()
        metrics.add(MetricCatalog.eventsSent, [:], 7)
        let broken = MetricsLedger(store: UnavailableStore())
        #expect(throws: StoreError.self) { try broken.flush(metrics, now: Date(), random: SecureRandom()) }
        #expect(metrics.take()[MetricSeries(MetricCatalog.eventsSent)] == 7)
    }

    /// Prometheus's text format: HELP and TYPE for every metric, labels escaped and in order, a
    /// series read back from its text.
    @Test func theExpositionIsPrometheusText() {
        let series = MetricSeries(MetricCatalog.graphCalls, ["outcome": "api_error", "code": "190"])
        #expect(series.text == #"compass_meta_graph_calls_total{code="190",outcome="api_error"}"#)
        #expect(MetricSeries(text: series.text) == series)
        let odd = MetricSeries(MetricCatalog.eventsRejected, ["reason": "a \"quoted\" \\ value\nnext"])
        #expect(MetricSeries(text: odd.text) == odd)
        let text = MetricCatalog.exposition([series: 3, MetricSeries(MetricCatalog.lastRunDuration): 0.25])
        for metric in MetricCatalog.all {
            #expect(text.contains("# HELP \(metric.name) ") && text.contains("# TYPE \(metric.name) \(metric.kind.rawValue)\n"))
            #expect(metric.name.hasPrefix("compass_meta_") && (metric.kind == .counter) == metric.name.hasSuffix("_total"))
        }
        #expect(text.contains(#"compass_meta_graph_calls_total{code="190",outcome="api_error"} 3"# + "\n"))
        #expect(text.contains("compass_meta_refresh_last_run_duration_seconds 0.25\n"))
        #expect(text.contains("compass_meta_events_sent_total 0\n"))
        #expect(!text.contains("tenant=\""))
    }
}

/// A store that is never there.
struct UnavailableStore: KeyValueStore {
    func get(_ key: String) throws(StoreError) -> Versioned? { throw .unavailable("down") }
    func put(_ key: String, _ value: [UInt8], ttl: Int?) throws(StoreError) -> UInt64 { throw .unavailable("down") }
    func create(_ key: String, _ value: [UInt8], ttl: Int?) throws(StoreError) -> UInt64 { throw .unavailable("down") }
    func compareAndSwap(_ key: String, _ value: [UInt8], expected version: UInt64, ttl: Int?) throws(StoreError) -> UInt64 {
        throw .unavailable("down")
    }
    func delete(_ key: String, ifVersion version: UInt64?) throws(StoreError) -> Bool { throw .unavailable("down") }
    func list(prefix: String, after: String?, limit: Int) throws(StoreError) -> KeyPage { throw .unavailable("down") }
    func deleteAll(prefix: String) throws(StoreError) -> Int { throw .unavailable("down") }
    func sweepExpired(after: String?, limit: Int, asOf: Date) throws(StoreError) -> SweepPage { throw .unavailable("down") }
}

/// The integrations gauge, kept by the work that changes a status, after one walk that counts
/// the integrations from before it.
@Suite struct IntegrationsGaugeTests {
    /// The gauge's series that are not zero, by status.
    static func gauge(_ world: World) throws -> [String: Double] {
        let values = try MetricsHandler(dependencies: world.dependencies).values()
        var byStatus: [String: Double] = [:]
        for (series, value) in values where series.name == MetricCatalog.integrations && value != 0 {
            byStatus[series.labels["status"]!] = value
        }
        return byStatus
    }

    @Test func connectReauthAndDisconnectMoveTheGauge() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        // An integration from before the gauge: only the one-time walk can count it.
        try world.store.put(
            RecordKey.integration("tenant_old"),
            JSON.encode(
                Integration(
                    tenantId: "tenant_old", status: .needsReauth, statusReason: "token_invalid", metaUserId: "9",
                    config: .init(adAccounts: []),
                    grantedScopes: [], missingScopes: [], connectedAt: world.clock.now, updatedAt: world.clock.now)))
        world.readyTenant()
        #expect(try Self.gauge(world)["connected"] == 1)
        _ = world.drain()
        #expect(try Self.gauge(world) == ["connected": 1, "needs_reauth": 1])
        _ = world.drain()  // the walk is once
        #expect(try Self.gauge(world)["needs_reauth"] == 1)
        // Meta refuses tenant_a's token at its daily check.
        world.clock.advance(2 * 86_400)
        world.queueFault(.tokenInvalid, path: "debug_token")
        #expect(world.drain().tokens.needsReauth == 1)
        #expect(try Self.gauge(world) == ["needs_reauth": 2])
        // Connected again, then disconnected: gone from the gauge.
        world.connectTenant()
        #expect(try Self.gauge(world) == ["connected": 1, "needs_reauth": 1])
        let disconnected = world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect"))
        #expect(disconnected.status == 200, "\(disconnected.body)")
        #expect(try Self.gauge(world) == ["needs_reauth": 1])
    }
}

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
