import CompassPlatform
import CompassStorage

/// The connector's figures in the store, exact across processes (CGI, FastCGI, Lambda) at the
/// cost of one small write per request:
/// - a request adds what it changed (`Metrics`) to one of `buckets` shards of the current
///   minute, `meta/metrics/shard/<minute>/<bucket>`, by compare-and-swap (a random bucket, so
///   requests at once seldom meet);
/// - refresh-cron folds shards older than `foldAfterMinutes` into `meta/metrics/total`, which
///   records the last minute it holds, and then deletes them;
/// - a read is the total plus the shards after its minute: at most `buckets` a minute for the
///   last quarter of an hour, whatever the number of tenants.
/// A process stalled for longer than `foldAfterMinutes` between reading the clock and writing
/// would add to a minute already folded: its changes are not counted (a request is bounded far
/// below that).
package struct MetricsLedger: Sendable {
    package let store: any KeyValueStore
    package static let buckets = 16
    package static let foldAfterMinutes: Int64 = 15
    package static let shardPrefix = "meta/metrics/shard/"
    package static let totalKey = "meta/metrics/total"
    /// The last refresh-cron run's figures, written at its end.
    package static let lastRunKey = "meta/metrics/last-run"
    /// Present once refresh-cron has counted every integration by status.
    package static let integrationsCountedKey = "meta/metrics/integrations-counted"
    /// Where the one-time walk of `integrationsCountedKey` stands between runs (`IntegrationsWalk`).
    package static let integrationsWalkKey = "meta/metrics/integrations-walk"

    package init(store: any KeyValueStore) {
        self.store = store
    }

    struct Total: Codable {
        /// Shards of this minute and before are in `series`.
        var through: Int64
        var series: [String: Int64]
    }

    package static func shardKey(minute: Int64, bucket: Int) -> String {
        let digits = String(max(0, minute))
        return shardPrefix + String(repeating: "0", count: max(0, 10 - digits.count)) + digits + "/b" + String(bucket)
    }

    static func minute(ofShard key: String) -> Int64? {
        guard key.hasPrefix(shardPrefix) else { return nil }
        return Int64(key.dropFirst(shardPrefix.count).prefix { $0 != "/" })
    }

    /// Adds what `metrics` holds to a shard of the current minute; on a failure the changes go
    /// back to `metrics` (written with the next request's, or lost with the process) and the
    /// store's error is thrown for the caller to log: figures never fail a request.
    package func flush(_ metrics: Metrics, now: Date, random: any RandomSource) throws(StoreError) {
        let changes = metrics.take()
        guard !changes.isEmpty else { return }
        let minute = now.unixSeconds / 60
        var bucket = Int(random.bytes(1)[0]) % Self.buckets
        do throws(StoreError) {
            for _ in 0..<8 {
                if try add(changes, to: Self.shardKey(minute: minute, bucket: bucket)) { return }
                bucket = (bucket + 1) % Self.buckets
            }
            throw StoreError.unavailable("every metrics shard tried was being written")
        } catch {
            metrics.restore(changes)
            throw error
        }
    }

    /// One compare-and-swap of a shard; false when another writer came first.
    private func add(_ changes: [MetricSeries: Int64], to key: String) throws(StoreError) -> Bool {
        let current = try store.get(key)
        var series = current.flatMap { try? JSON.decode([String: Int64].self, from: $0.value) } ?? [:]
        for (name, amount) in changes { series[name.text, default: 0] += amount }
        let bytes = JSON.encode(series)
        do {
            if let current {
                try store.compareAndSwap(key, bytes, expected: current.version, ttl: nil)
            } else {
                try store.create(key, bytes, ttl: nil)
            }
            return true
        } catch .versionMismatch, .alreadyExists {
            return false
        }
    }

    /// Every series: the total and every shard after it.
    package func read() throws(StoreError) -> [MetricSeries: Int64] {
        let (total, _) = try loadTotal()
        var sums: [String: Int64] = total.series
        var cursor: String? = nil
        repeat {
            let page = try store.list(prefix: Self.shardPrefix, after: cursor, limit: 500)
            for entry in page.entries where (Self.minute(ofShard: entry.key) ?? 0) > total.through {
                guard let series = try? JSON.decode([String: Int64].self, from: entry.value.value) else { continue }
                for (name, amount) in series { sums[name, default: 0] += amount }
            }
            cursor = page.cursor
        } while cursor != nil
        var values: [MetricSeries: Int64] = [:]
        for (text, amount) in sums { if let series = MetricSeries(text: text) { values[series, default: 0] += amount } }
        return values
    }

    private func loadTotal() throws(StoreError) -> (Total, UInt64?) {
        guard let found = try store.get(Self.totalKey) else { return (Total(through: 0, series: [:]), nil) }
        guard let total = try? JSON.decode(Total.self, from: found.value) else { throw .corrupt(Self.totalKey) }
        return (total, found.version)
    }

    /// Folds the shards older than `foldAfterMinutes` into the total, then deletes them;
    /// returns how many it folded. Two runs at once: one wins the total's compare-and-swap, the
    /// other folds nothing.
    @discardableResult
    package func fold(now: Date) throws(StoreError) -> Int {
        let cutoff = now.unixSeconds / 60 - Self.foldAfterMinutes
        var (total, version) = try loadTotal()
        guard cutoff > total.through else { return 0 }
        var folded: [(key: String, version: UInt64)] = []
        var cursor: String? = nil
        listing: repeat {
            let page = try store.list(prefix: Self.shardPrefix, after: cursor, limit: 500)
            for entry in page.entries {
                guard let minute = Self.minute(ofShard: entry.key) else { continue }
                if minute > cutoff { break listing }
                folded.append((entry.key, entry.value.version))
                guard minute > total.through, let series = try? JSON.decode([String: Int64].self, from: entry.value.value) else { continue }
                for (name, amount) in series { total.series[name, default: 0] += amount }
            }
            cursor = page.cursor
        } while cursor != nil
        total.through = cutoff
        do {
            if let version {
                try store.compareAndSwap(Self.totalKey, JSON.encode(total), expected: version, ttl: nil)
            } else {
                try store.create(Self.totalKey, JSON.encode(total), ttl: nil)
            }
        } catch .versionMismatch, .alreadyExists {
            return 0
        }
        for shard in folded { _ = try? store.delete(shard.key, ifVersion: shard.version) }
        return folded.count
    }
}
