import CompassMeta
import CompassPlatform
import CompassStorage

#if canImport(Glibc)
    import Glibc
#endif

/// The scheduled job (`refresh-cron`): renews and checks tokens, re-encrypts credentials after
/// a key rotation, drains every tenant's outbox and delivers notices to Compass. Over HTTP
/// (POST /api/cron/meta/refresh) it needs `Authorization: Bearer $CRON_SECRET`; run directly
/// (no CGI variables) it needs nothing and prints the same JSON summary.
package struct RefreshCronHandler: DirectlyRunnable {
    package static let name = "refresh-cron"
    package static let methods = ["POST"]
    package static let paths = ["/api/cron/meta/refresh"]
    package let dependencies: Dependencies

    package struct Summary: Encodable, Sendable {
        package struct Outbox: Encodable, Sendable {
            package var tenants = 0
            package var sent = 0
            package var retried = 0
            package var dead = 0
            package var waiting = 0
            /// Queued copies of events another copy delivered meanwhile: removed, not sent.
            package var duplicates = 0
            package var skipped = 0
            /// Draining stopped because Meta's usage headers neared its limits; the rest waits.
            package var throttled = false
        }
        package var tokens = TokenRefresher.Summary()
        package var outbox = Outbox()
        package var notices = IntegrationLifecycle.NoticeSummary()
        /// Meta's Event Match Quality figures fetched for the tenants due: along the token job's
        /// checks and from the quality index.
        package var quality = QualityFetcher.Summary()
        /// Test event codes past their end, cleared from the settings.
        package var testCodes = TestEventCodeExpiry.Summary()
        package var sweep = StoreSweep.Summary()
        /// The run stopped taking new work when its time budget (REFRESH_BUDGET_SECONDS) was spent.
        package var budgetSpent = false
        package var durationMs = 0
    }

    package func handle(_ request: CGIRequest) throws -> CGIResponse {
        guard let secret = dependencies.config.routes.cronSecret else {
            throw ConfigError(variable: "CRON_SECRET", problem: "is not set")
        }
        let presented = request.bearerToken ?? ""
        guard Crypto.constantTimeEquals(Crypto.sha256(presented), Crypto.sha256(secret)) else {
            throw APIError(
                401, "unauthorized", "The cron route needs Authorization: Bearer CRON_SECRET.",
                headers: [("WWW-Authenticate", "Bearer")])
        }
        return .json(200, try run())
    }

    /// Both jobs; throws only when the job itself cannot run (the store is unavailable).
    package func run() throws(StoreError) -> Summary {
        let started = monotonicMilliseconds()
        var summary = Summary()
        // No new work past the budget: what is left waits for the next run (a minute later).
        let deadline = dependencies.clock.now.addingTimeInterval(TimeInterval(dependencies.config.routes.refreshBudgetSeconds))
        let inBudget = { dependencies.clock.now < deadline }
        let refresher = TokenRefresher(dependencies: dependencies)
        let outboxUsage = GraphUsage()
        summary.tokens = try refresher.run(until: deadline)
        if inBudget() { try drainOutboxes(into: &summary.outbox, until: deadline, usage: outboxUsage) }
        if inBudget() { summary.quality = try QualityFetcher(dependencies: dependencies).run(until: deadline) }
        summary.quality = summary.quality + refresher.quality.value
        if inBudget() { summary.testCodes = try TestEventCodeExpiry(dependencies: dependencies).run(until: deadline) }
        if inBudget() { summary.notices = try IntegrationLifecycle(dependencies: dependencies).deliverNotices() }
        if inBudget() { try countIntegrationsOnce(inBudget: inBudget) }
        if inBudget(), let swept = try StoreSweep(store: dependencies.store).runShareIfDue(asOf: dependencies.clock.now) {
            summary.sweep = swept
        }
        summary.budgetSpent = !inBudget() || (summary.tokens.left > 0 && !summary.tokens.throttled) || summary.quality.left > 0
        summary.durationMs = Int(monotonicMilliseconds() - started)
        recordMetrics(
            summary, startedAt: deadline.addingTimeInterval(-TimeInterval(dependencies.config.routes.refreshBudgetSeconds)),
            usage: max(refresher.usage.percentage, outboxUsage.percentage))
        dependencies.logger.info(
            "cron_finished",
            [
                "renewed": .int(summary.tokens.renewed), "needs_reauth": .int(summary.tokens.needsReauth),
                "tenants": .int(summary.outbox.tenants), "sent": .int(summary.outbox.sent), "dead": .int(summary.outbox.dead),
                "swept": .int(summary.sweep.deleted), "duration_ms": .int(summary.durationMs),
            ])
        return summary
    }

    /// How long a tenant whose events cannot be sent now (no pixel, needs_reauth) waits before
    /// its outbox is looked at again; reconnecting or choosing a pixel makes it due at once.
    package static let waitingRecheck: TimeInterval = 3600

    /// The tenants whose queued events are due (the outbox index), each drained and given its
    /// next entry: at its earliest event still waiting, none once its outbox is empty.
    private func drainOutboxes(into outbox: inout Summary.Outbox, until deadline: Date, usage: GraphUsage) throws(StoreError) {
        defer { dependencies.logger.setTenant(nil) }
        let job = OutboxJob(cron: self, usage: usage, tally: Tally(Summary.Outbox()))
        let run = try DueJobRunner(clock: dependencies.clock).run(job, until: deadline)
        outbox = job.tally.value
        outbox.throttled = run.throttled
    }

    /// One drain per due tenant, one tenant at a time; Meta's usage headers, successful answers
    /// included, pace it as they pace the token job.
    private struct OutboxJob: DueJob {
        let cron: RefreshCronHandler
        let usage: GraphUsage?
        let tally: Tally<Summary.Outbox>

        var dependencies: Dependencies { cron.dependencies }
        var index: DueIndex { DueIndex(store: dependencies.store, prefix: DueIndex.outboxPrefix) }
        var concurrency: Int { 1 }
        func indexOnce() throws(StoreError) { try cron.indexOutboxesOnce() }

        func work(_ entry: (key: String, tenant: String)) throws(StoreError) {
            dependencies.logger.setTenant(entry.tenant)
            var pipeline = EventPipeline(dependencies: dependencies, tenant: entry.tenant)
            pipeline.usage = usage ?? GraphUsage()
            let result = try pipeline.drain()
            let now = dependencies.clock.now
            let next: Date?
            switch result.skipped {
            case .leaseHeld: return  // another drain has the tenant, and its entry
            case .some: next = result.waiting > 0 ? now.addingTimeInterval(RefreshCronHandler.waitingRecheck) : nil
            case nil: next = result.nextAttemptAt
            }
            if let next { try index.add(entry.tenant, at: max(next, now.addingTimeInterval(60))) }
            _ = try? dependencies.store.delete(entry.key)
            tally.add { outbox in
                outbox.tenants += 1
                outbox.sent += result.sent
                outbox.retried += result.retried
                outbox.dead += result.dead
                outbox.waiting += result.waiting
                outbox.duplicates += result.duplicates
                if result.skipped != nil { outbox.skipped += 1 }
            }
        }
    }

    /// The run's figures: counters for what it did, the last run's record for the metrics
    /// route, shards older than a quarter of an hour folded into the total, and this run's
    /// changes written. A failure here is a log line, never a failed run.
    private func recordMetrics(_ summary: Summary, startedAt: Date, usage: Double) {
        let metrics = dependencies.metrics
        metrics.add(MetricCatalog.tokenRenewals, [:], summary.tokens.renewed)
        metrics.add(MetricCatalog.tokenFailures, ["reason": "needs_reauth"], summary.tokens.needsReauth)
        metrics.add(MetricCatalog.tokenFailures, ["reason": "failed"], summary.tokens.failed)
        metrics.add(MetricCatalog.noticesSent, [:], summary.notices.sent)
        metrics.add(MetricCatalog.refreshRuns)
        let ledger = MetricsLedger(store: dependencies.store)
        do {
            var last = LastRun(summary, startedAt: startedAt)
            last.metaUsagePercent = usage
            try dependencies.store.put(MetricsLedger.lastRunKey, JSON.encode(last), ttl: nil)
            try ledger.fold(now: dependencies.clock.now)
        } catch {
            dependencies.logger.warn("metrics_not_written", ["error": .string("\(error)")])
        }
        dependencies.flushMetrics()
    }

    /// The one-time walk of `countIntegrationsOnce`, kept between runs: which records it walks
    /// (the integrations, then the credentials), where it stopped, and what it has counted.
    struct IntegrationsWalk: Codable {
        var credentials = false
        var cursor: String?
        var found: [String: Int] = [:]
        var unavailable = 0
    }

    /// Counts every integration by status (and the unavailable pixels) once, then puts every
    /// credential's expiry into its index (for those written before either existed), setting
    /// the gauges to what the walk found: integrations from before the gauge existed are in it,
    /// and from then on the work that changes a status keeps it. At most `pages` pages of
    /// `pageSize` records a run, resumed by the next run until done (the marker
    /// `meta/metrics/integrations-counted`): a store of a million tenants is walked over several
    /// runs, never past one's budget. A status that changes while the walk runs may be off by
    /// one until it changes again.
    func countIntegrationsOnce(pages: Int = 20, pageSize: Int = 500, inBudget: () -> Bool = { true }) throws(StoreError) {
        let store = dependencies.store
        guard try store.get(MetricsLedger.integrationsCountedKey) == nil else { return }
        let records = RecordStore(store: store)
        var walk = (try? records.load(IntegrationsWalk.self, at: MetricsLedger.integrationsWalkKey))??.0 ?? IntegrationsWalk()
        for _ in 0..<pages where inBudget() {
            if walk.credentials {
                let page = try store.scan(prefix: RecordKey.credentialsPrefix, after: walk.cursor, limit: pageSize)
                try TokenExpiry(store: store).addAll(
                    page.entries.compactMap { key, value in
                        guard let credential = try? JSON.decode(IntegrationCredential.self, from: value.value) else { return nil }
                        return (String(key.dropFirst(RecordKey.credentialsPrefix.count)), credential.expiresAt)
                    })
                walk.cursor = page.cursor
                if page.cursor == nil {
                    try store.put(MetricsLedger.integrationsCountedKey, Array(dependencies.clock.now.formatted(.iso8601).utf8))
                    _ = try store.delete(MetricsLedger.integrationsWalkKey, ifVersion: nil)
                    return
                }
            } else {
                let page = try store.scan(prefix: RecordKey.integrationsPrefix, after: walk.cursor, limit: pageSize)
                for (_, value) in page.entries {
                    guard let integration = try? JSON.decode(Integration.self, from: value.value) else { continue }
                    walk.found[integration.status.rawValue, default: 0] += 1
                    walk.unavailable += integration.unavailableDatasets
                }
                walk.cursor = page.cursor
                if page.cursor == nil {
                    try setIntegrationGauges(walk)
                    walk.credentials = true
                }
            }
        }
        try records.save(walk, at: MetricsLedger.integrationsWalkKey)
    }

    /// The integration gauges set to what the walk found, as deltas from what the ledger holds.
    private func setIntegrationGauges(_ walk: IntegrationsWalk) throws(StoreError) {
        let kept = try MetricsLedger(store: dependencies.store).read()
        for status in [IntegrationStatus.connected, .needsReauth, .disconnected] {
            let series = MetricSeries(MetricCatalog.integrations, ["status": status.rawValue])
            dependencies.metrics.add(
                MetricCatalog.integrations, ["status": status.rawValue], (walk.found[status.rawValue] ?? 0) - Int(kept[series] ?? 0))
        }
        let pixels = MetricSeries(MetricCatalog.pixelsUnavailable)
        dependencies.metrics.add(MetricCatalog.pixelsUnavailable, [:], walk.unavailable - Int(kept[pixels] ?? 0))
    }

    /// Gives every tenant with queued events from before the outbox index an entry due now,
    /// once: skipping from one tenant's keys to the next.
    fileprivate func indexOutboxesOnce() throws(StoreError) {
        let store = dependencies.store
        guard try store.get(RecordKey.outboxIndexComplete) == nil else { return }
        let index = DueIndex(store: store, prefix: DueIndex.outboxPrefix)
        var after: String? = nil
        while let first = try store.list(prefix: RecordKey.outboxRoot, after: after, limit: 1).entries.first {
            let tenant = String(first.key.dropFirst(RecordKey.outboxRoot.count).prefix { $0 != "/" })
            // `~` sorts after every key character: the next key belongs to the next tenant.
            after = RecordKey.outboxPrefix(tenant) + "~"
            if Tenant.isValidId(tenant) { try index.add(tenant, at: dependencies.clock.now) }
        }
        try store.put(RecordKey.outboxIndexComplete, Array(dependencies.clock.now.formatted(.iso8601).utf8))
    }

    package init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }
}

/// The last refresh-cron run as the metrics route shows it: when it started, how long it took,
/// whether its budget ran out, and every figure of its summary by job.
package struct LastRun: Codable, Sendable, Equatable {
    package var startedAt: Int64
    package var durationMs: Int
    package var budgetSpent: Bool
    /// `tokens.renewed`, `outbox.sent`, ...: the summary's numbers, flattened.
    package var figures: [String: Int]
    /// The highest share of Meta's rate limits its answers reported to the run's calls (percent).
    package var metaUsagePercent: Double?

    init(_ summary: RefreshCronHandler.Summary, startedAt: Date) {
        self.startedAt = startedAt.unixSeconds
        durationMs = summary.durationMs
        budgetSpent = summary.budgetSpent
        figures = [:]
        guard let tree = try? JSONParser.parse(JSON.encode(summary)), let jobs = tree.object else { return }
        for (job, value) in jobs {
            for (name, figure) in value.object ?? [:] {
                if let number = figure.integer { figures[job + "." + name] = Int(number) }
                if let flag = figure.bool { figures[job + "." + name] = flag ? 1 : 0 }
            }
        }
    }
}
