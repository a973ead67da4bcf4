import CompassMeta
import CompassPlatform
import CompassStorage
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Meta's Event Match Quality for one of a tenant's datasets, as last fetched
/// (`meta/dataset-quality/<tenant>/<dataset>`; before datasets, the pixel's at
/// `meta/quality/<tenant>`), and the last fetch Meta refused or that did not reach Meta, if it
/// came after.
package struct MatchQuality: Codable, Sendable, Equatable {
    /// The dataset (pixel) the figures are of.
    package var pixelId: String
    /// When Meta last answered; nil while every fetch for this pixel has failed.
    package var fetchedAt: Date?
    package var events: [EventQuality]
    /// An offline dataset's figures (Meta's `offline` rows), in place of `events`.
    package var offline: [OfflineEventQuality]?
    package var lastFailure: Failure?

    package struct Failure: Codable, Sendable, Equatable {
        package var at: Date
        /// Meta's own message (or why Meta could not be reached); never a token.
        package var message: String
        /// When the fetch is tried again.
        package var retryAt: Date
    }

    package init(
        pixelId: String, fetchedAt: Date?, events: [EventQuality], offline: [OfflineEventQuality]? = nil, lastFailure: Failure? = nil
    ) {
        self.pixelId = pixelId
        self.fetchedAt = fetchedAt
        self.events = events
        self.offline = offline
        self.lastFailure = lastFailure
    }

    /// Why Compass should hear about this fetch against the one before: an event's composite
    /// score fell by 1.0 or more, or its browser/server dedupe coverage fell under 50 %.
    package func degradation(since earlier: MatchQuality) -> String? {
        guard earlier.pixelId == pixelId else { return nil }
        for event in offline ?? [] {
            guard let before = earlier.offline?.first(where: { $0.eventName == event.eventName }) else { continue }
            if let old = before.composite?.score, let new = event.composite?.score, old - new >= QualityFetcher.scoreDrop {
                return "match_quality_dropped"
            }
        }
        for event in events {
            guard let before = earlier.events.first(where: { $0.eventName == event.eventName }) else { continue }
            if let old = before.compositeScore, let new = event.compositeScore, old - new >= QualityFetcher.scoreDrop {
                return "match_quality_dropped"
            }
            if let old = before.dedupeCoverage, let new = event.dedupeCoverage,
                old >= QualityFetcher.dedupeFloor, new < QualityFetcher.dedupeFloor
            {
                return "dedupe_coverage_low"
            }
        }
        return nil
    }
}

/// refresh-cron's daily fetch of Meta's dataset quality figures. It rides on the token job:
/// when a tenant's token has had its daily check, the figures of each of its datasets not
/// fetched within half a day are fetched with the same token and kept for settings, so a tenant
/// costs no index entry of its own for a daily fetch. The quality index
/// (`meta/quality-due/<minute>/<tenant>`) holds only the fetches due before the tenant's next
/// check: a dataset just chosen (due at once) and a retry an hour after a fetch Meta refused or
/// that did not reach Meta. A run fetches those (META_CONCURRENCY at once) and drops each entry
/// once nothing is left to retry.
package struct QualityFetcher {
    package let dependencies: Dependencies
    package static let retryDelay: TimeInterval = 3600
    /// Figures fetched less than this long ago are not asked for again: half a day, so that a
    /// fetch between two daily checks (a dataset just chosen, a retry) is followed by the next
    /// check's, and a tenant's fetches fall in with its checks from then on.
    package static let freshFor: TimeInterval = DueIndex.period / 2
    /// A composite score this much lower than at the fetch before is a degradation.
    package static let scoreDrop = 1.0
    /// Browser/server dedupe coverage under this percentage is a degradation.
    package static let dedupeFloor = 50.0

    package struct Summary: Codable, Sendable, Equatable {
        package var fetched = 0
        package var failed = 0
        /// Entries of tenants without a pixel (or disconnected) any more, or with nothing to
        /// fetch or retry: dropped.
        package var stale = 0
        /// Due entries this run did not reach (its time budget was spent).
        package var left = 0

        /// This run's figures and another's (the fetches along the token job's checks).
        package static func + (one: Summary, other: Summary) -> Summary {
            Summary(
                fetched: one.fetched + other.fetched, failed: one.failed + other.failed, stale: one.stale + other.stale,
                left: one.left + other.left)
        }
    }

    /// What became of one tenant's datasets: fetched and failed, or nothing asked.
    fileprivate enum TenantFetch {
        case tried(fetched: Int, failed: Int)
        case stale, skipped
    }

    package var now: Date { dependencies.clock.now }
    fileprivate var index: DueIndex { DueIndex(store: dependencies.store, prefix: DueIndex.qualityPrefix) }

    package init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }

    /// Makes the tenant's figures due at the next run (a pixel was just chosen).
    package static func dueNow(_ tenant: String, dependencies: Dependencies) {
        _ = try? DueIndex(store: dependencies.store, prefix: DueIndex.qualityPrefix).add(tenant, at: dependencies.clock.now)
    }

    /// The fetches due in the quality index: datasets just chosen, and retries.
    package func run(until deadline: Date?) throws(StoreError) -> Summary {
        let job = QualityJob(fetcher: self, tally: Tally(Summary()))
        let run = try DueJobRunner(clock: dependencies.clock).run(job, until: deadline)
        var total = job.tally.value
        total.left = run.left
        return total
    }

    /// After the token job checked the tenant's token: the figures of its datasets
    /// not fetched within half a day, and a retry entry for any that failed.
    package func fetchAlongCheck(_ tenant: String) -> Summary {
        guard case .tried(let fetched, let failed) = fetch(tenant, entry: nil) else { return Summary() }
        return Summary(fetched: fetched, failed: failed)
    }

    /// One fetch per due tenant; a second entry of a tenant in a page is an extra one.
    private struct QualityJob: DueJob {
        let fetcher: QualityFetcher
        let tally: Tally<Summary>

        var index: DueIndex { fetcher.index }
        var concurrency: Int { fetcher.dependencies.config.routes.metaConcurrency }
        var oneEntryPerTenant: Bool { true }
        func indexOnce() {}

        func dropExtra(_ entry: (key: String, tenant: String)) {
            _ = try? fetcher.dependencies.store.delete(entry.key)
            tally.add { $0.stale += 1 }
        }

        func work(_ entry: (key: String, tenant: String)) {
            let outcome = fetcher.fetch(entry.tenant, entry: entry.key)
            tally.add { total in
                switch outcome {
                case .tried(let fetched, let failed):
                    total.fetched += fetched
                    total.failed += failed
                case .stale: total.stale += 1
                case .skipped: break
                }
            }
        }
    }

    /// The figures kept for `dataset`, if any: its own record, else (for the default pixel)
    /// the one kept before datasets had their own.
    package static func kept(_ tenant: String, dataset: String, records: RecordStore) -> MatchQuality? {
        if let own = (try? records.loadUnlessCorrupt(MatchQuality.self, at: RecordKey.datasetQuality(tenant, dataset)))??.0 {
            return own
        }
        let earlier = (try? records.loadUnlessCorrupt(MatchQuality.self, at: RecordKey.quality(tenant)))??.0
        return earlier?.pixelId == dataset ? earlier : nil
    }

    /// One tenant: each of its datasets' figures fetched and kept when due, with the quality
    /// index's `entry` (nil along a token check) moved to the earliest retry among them, or
    /// dropped when none is left to retry.
    fileprivate func fetch(_ tenant: String, entry: String?) -> TenantFetch {
        let records = dependencies.records
        guard let integration = (try? records.load(Integration.self, at: RecordKey.integration(tenant)))??.0,
            integration.status == .connected, !integration.config.datasetsInUse.isEmpty,
            let credential = (try? records.load(IntegrationCredential.self, at: RecordKey.credential(tenant)))??.0
        else {
            if let entry { _ = try? dependencies.store.delete(entry) }
            return .stale
        }
        // The token, opened once for the tenant's datasets when one is due (or why it cannot be).
        var token: Result<String, any Error>? = nil
        var retries: Date? = nil
        var (fetched, failed) = (0, 0)
        for dataset in integration.config.datasetsInUse {
            let kept = Self.kept(tenant, dataset: dataset, records: records)
            // Fetched lately: nothing to ask (an extra entry, from a writer that died between
            // its two writes, is dropped without a call).
            if let kept, let fetchedAt = kept.fetchedAt, kept.lastFailure == nil, now.timeIntervalSince(fetchedAt) < Self.freshFor {
                continue
            }
            // Failed lately: nothing before its retry, an hour on.
            if let retryAt = kept?.lastFailure?.retryAt, retryAt > now {
                retries = min(retries ?? retryAt, retryAt)
                continue
            }
            let opened = token ?? Result { try dependencies.openToken(credential, tenant: tenant) }
            token = opened
            if let retryAt = fetchOne(
                tenant, dataset: dataset, offline: integration.config.isOfflineDataset(dataset), token: opened, kept: kept)
            {
                retries = min(retries ?? retryAt, retryAt)
                failed += 1
            } else {
                fetched += 1
            }
        }
        // A retry keeps (or is) the live entry; with none, the token's next check fetches next.
        if let retries {
            guard (try? index.add(tenant, at: retries)) != nil else { return .skipped }
        }
        if let entry, retries.map({ DueIndex.key(tenant, at: $0, prefix: DueIndex.qualityPrefix) }) != entry {
            _ = try? dependencies.store.delete(entry)
        }
        return fetched + failed == 0 ? .stale : .tried(fetched: fetched, failed: failed)
    }

    /// One dataset's figures asked of Meta and kept; nil when Meta answered, else when to retry.
    private func fetchOne(
        _ tenant: String, dataset: String, offline: Bool, token opened: Result<String, any Error>, kept: MatchQuality?
    ) -> Date? {
        let records = dependencies.records
        do {
            let token = try opened.get()
            let graph = try dependencies.graph()
            let agent = dependencies.config.meta.agentName
            var fetched = MatchQuality(pixelId: dataset, fetchedAt: now, events: [])
            if offline {
                fetched.offline = try graph.offlineDatasetQuality(datasetId: dataset, agentName: agent, token: token)
            } else {
                fetched.events = try graph.datasetQuality(pixelId: dataset, agentName: agent, token: token)
            }
            try records.save(fetched, at: RecordKey.datasetQuality(tenant, dataset))
            // The pixel's record from before datasets had their own is replaced by this one.
            if let earlier = (try? records.loadUnlessCorrupt(MatchQuality.self, at: RecordKey.quality(tenant)))??.0,
                earlier.pixelId == dataset
            {
                _ = try? records.store.delete(RecordKey.quality(tenant))
            }
            dependencies.logger.info(
                "match_quality_fetched",
                ["tenant": .string(tenant), "dataset": .string(dataset), "events": .int(fetched.offline?.count ?? fetched.events.count)])
            if let kept, let reason = fetched.degradation(since: kept) {
                dependencies.logger.warn(
                    "match_quality_degraded", ["tenant": .string(tenant), "dataset": .string(dataset), "reason": .string(reason)])
                IntegrationLifecycle(dependencies: dependencies)
                    .enqueueNotice(
                        CompassNotice(type: "integration.quality_degraded", tenant: tenant, reason: reason, time: now, dataset: dataset))
            }
            return nil
        } catch {
            let next = now.addingTimeInterval(Self.retryDelay)
            let message: String
            if let failure = error as? GraphFailure {
                dependencies.logger.warn("match_quality_failed", failure.logFields.merging(["tenant": .string(tenant)]) { a, _ in a })
                message = EventDelivery.reason(failure)
            } else {
                dependencies.logger.warn("match_quality_failed", ["tenant": .string(tenant), "error": .string("\(error)")])
                message = "The quality figures could not be fetched: the store or the token could not be read."
            }
            // The figures of the last good fetch stay; settings shows why the newest did not come.
            var record = kept ?? MatchQuality(pixelId: dataset, fetchedAt: nil, events: [])
            record.lastFailure = .init(at: now, message: message, retryAt: next)
            _ = try? records.save(record, at: RecordKey.datasetQuality(tenant, dataset))
            return next
        }
    }
}
