import CompassPlatform
import CompassStorage

/// GET /api/cron/meta/metrics: the figures an operator watches, in Prometheus's text exposition
/// format (0.0.4), for Prometheus to scrape with `Authorization: Bearer $METRICS_TOKEN` (or
/// `CRON_SECRET` when that is unset). Its cost does not grow with the tenants: the counters and
/// the kept gauges are the ledger's total and its recent shards (`MetricsLedger`), dead letters
/// a count of the dead-letter records (a few, unless Meta refuses events for good), and the last
/// refresh-cron run one record. No series has a tenant label.
package struct MetricsHandler: Handler {
    package static let name = "metrics"
    package static let methods = ["GET"]
    package static let paths = ["/api/cron/meta/metrics"]
    package let dependencies: Dependencies

    package init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }

    package func handle(_ request: CGIRequest) throws -> CGIResponse {
        guard let secret = dependencies.config.routes.metricsToken ?? dependencies.config.routes.cronSecret else {
            throw ConfigError(variable: "METRICS_TOKEN", problem: "is not set (nor CRON_SECRET)")
        }
        guard Crypto.constantTimeEquals(Crypto.sha256(request.bearerToken ?? ""), Crypto.sha256(secret)) else {
            throw APIError(
                401, "unauthorized", "The metrics route needs Authorization: Bearer METRICS_TOKEN (or CRON_SECRET).",
                headers: [("WWW-Authenticate", "Bearer")])
        }
        let text = MetricCatalog.exposition(try values())
        return CGIResponse(
            status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"), ("Cache-Control", "no-store")],
            body: Array(text.utf8))
    }

    /// Seconds from `since` to `now`, 0 without one.
    package static func age(of since: Date?, now: Date) -> Double {
        since.map { max(0, now.timeIntervalSince($0).rounded()) } ?? 0
    }

    /// Every series' value now.
    package func values() throws(StoreError) -> [MetricSeries: Double] {
        var values: [MetricSeries: Double] = [:]
        for (series, amount) in try MetricsLedger(store: dependencies.store).read() { values[series] = Double(amount) }
        values[MetricSeries(MetricCatalog.deadLetters)] = Double(try dependencies.store.count(prefix: RecordKey.deadRoot))
        values[MetricSeries(MetricCatalog.tokensExpiringSoon)] = Double(
            try TokenExpiry(store: dependencies.store).countSoon(now: dependencies.clock.now))
        values[MetricSeries(MetricCatalog.oldestQueuedAge)] = Self.age(
            of: try WaitingSince(store: dependencies.store).oldest(), now: dependencies.clock.now)
        if let stored = try dependencies.store.get(MetricsLedger.lastRunKey), let last = try? JSON.decode(LastRun.self, from: stored.value)
        {
            values[MetricSeries(MetricCatalog.lastRunStart)] = Double(last.startedAt)
            values[MetricSeries(MetricCatalog.lastRunDuration)] = Double(last.durationMs) / 1000
            values[MetricSeries(MetricCatalog.lastRunBudgetSpent)] = last.budgetSpent ? 1 : 0
            values[MetricSeries(MetricCatalog.graphUsage)] = last.metaUsagePercent ?? 0
            for (figure, value) in last.figures {
                let parts = figure.split(separator: ".", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { continue }
                values[MetricSeries(MetricCatalog.lastRunJob, ["cron_job": parts[0], "figure": parts[1]])] = Double(value)
            }
        }
        return values
    }
}
