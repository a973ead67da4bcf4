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
