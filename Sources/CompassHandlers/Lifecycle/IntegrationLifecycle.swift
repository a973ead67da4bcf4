import CompassMeta
import CompassPlatform
import CompassStorage

/// Changes of an integration's state that several routes make: needing a new login, being
/// cut off by Meta, and telling Compass about it.
package struct IntegrationLifecycle {
    package let dependencies: Dependencies

    package var records: RecordStore { dependencies.records }
    package var now: Date { dependencies.clock.now }

    /// Meta refuses the token or a permission: status `needs_reauth` with the reason (events
    /// wait in the outbox), and a notice for Compass. Idempotent.
    package func markNeedsReauth(tenant: String, reason: String) {
        let changed = update(tenant) { integration in
            guard integration.status == .connected else { return false }
            integration.status = .needsReauth
            integration.statusReason = reason
            integration.lastRefresh = RefreshOutcome(outcome: "needs_reauth", at: now, detail: reason)
            return true
        }
        guard changed else { return }
        countStatus(from: .connected, to: .needsReauth)
        dependencies.logger.warn("integration_needs_reauth", ["reason": .string(reason)])
        enqueueNotice(CompassNotice(type: "integration.needs_reauth", tenant: tenant, reason: reason, time: now))
    }

    /// An integration moved from one status to another (nil: none), in the integrations gauge.
    package func countStatus(from old: IntegrationStatus?, to new: IntegrationStatus?) {
        guard old != new else { return }
        if let old { dependencies.metrics.add(MetricCatalog.integrations, ["status": old.rawValue], -1) }
        if let new { dependencies.metrics.add(MetricCatalog.integrations, ["status": new.rawValue]) }
    }

    /// Applies `change` with compare-and-swap; true when it changed and was saved (a store
    /// failure is false too: for callers to whom a missed change is no harm).
    @discardableResult
    package func update(_ tenant: String, _ change: (inout Integration) -> Bool) -> Bool {
        (try? updateOrThrow(tenant, change)) ?? false
    }

    /// As `update`, but a store failure, or a record that kept changing under it (five tries),
    /// is thrown; false when there is no integration (or none that can be read) or `change`
    /// changes nothing.
    package func updateOrThrow(_ tenant: String, _ change: (inout Integration) -> Bool) throws(StoreError) -> Bool {
        let key = RecordKey.integration(tenant)
        for _ in 0..<5 {
            guard let (integration, version) = try records.loadUnlessCorrupt(Integration.self, at: key) else { return false }
            var updated = integration
            guard change(&updated) else { return false }
            updated.updatedAt = now
            do {
                try records.replace(updated, at: key, version: version)
                return true
            } catch .versionMismatch {
                continue
            }
        }
        throw .versionMismatch
    }

    // MARK: Notices to Compass

    package func enqueueNotice(_ notice: CompassNotice) {
        guard dependencies.config.routes.webhookURL != nil else { return }
        let id = String(Int64(now.timeIntervalSince1970 * 1000)) + "-" + Hex.encode(dependencies.random.bytes(4))
        do {
            try records.save(notice, at: RecordKey.notice(notice.tenant, id))
        } catch {
            dependencies.logger.error("notice_not_stored", ["error": .string("\(error)")])
        }
    }

    package struct NoticeSummary: Codable, Sendable, Equatable {
        package var sent = 0
        package var pending = 0
        /// Another run held the notices' lease: it delivers them.
        package var skipped = false
    }

    /// Longer than delivering a page of notices takes (5 s each at most).
    package static let noticesLeaseSeconds = 600

    /// Posts every waiting notice, signed: `X-Compass-Signature: sha256=<hex HMAC-SHA256 of
    /// "<timestamp>.<body>">` with `X-Compass-Timestamp`. Kept until Compass answers 2xx.
    /// Under one lease for all notices: overlapping cron runs never post a notice twice.
    package func deliverNotices() throws(StoreError) -> NoticeSummary {
        var summary = NoticeSummary()
        guard let url = dependencies.config.routes.webhookURL, let secret = dependencies.config.routes.webhookSecret else { return summary }
        let lease: UInt64
        do {
            lease = try dependencies.store.create(RecordKey.noticesLease, [], ttl: Self.noticesLeaseSeconds)
        } catch .alreadyExists {
            summary.skipped = true
            return summary
        }
        defer { _ = try? dependencies.store.delete(RecordKey.noticesLease, ifVersion: lease) }
        // Well inside the lease: what is left waits for the next run.
        let stopAt = monotonicMilliseconds() + Int64(Self.noticesLeaseSeconds) * 500
        var cursor: String? = nil
        repeat {
            guard monotonicMilliseconds() < stopAt else { break }
            let page = try dependencies.store.list(prefix: RecordKey.noticesPrefix, after: cursor, limit: 100)
            cursor = page.cursor
            for (key, value) in page.entries {
                guard var notice = try? JSON.decode(CompassNotice.self, from: value.value) else {
                    _ = try? dependencies.store.delete(key, ifVersion: value.version)
                    continue
                }
                struct Body: Encodable {
                    var type: String
                    var tenant: String
                    var reason: String
                    var time: Date
                    var dataset: String?
                }
                let body = JSON.encode(
                    Body(type: notice.type, tenant: notice.tenant, reason: notice.reason, time: notice.time, dataset: notice.dataset))
                let timestamp = String(now.unixSeconds)
                let signature = Hex.encode(Crypto.hmacSHA256(key: Array(secret.utf8), message: Array((timestamp + ".").utf8) + body))
                let request = HTTPRequest(
                    method: "POST", url: url,
                    headers: [
                        ("Content-Type", "application/json"), ("X-Compass-Timestamp", timestamp),
                        ("X-Compass-Signature", "sha256=" + signature),
                    ], body: body, timeoutMilliseconds: 5_000, maxResponseBytes: 64 * 1024)
                let delivered = (try? dependencies.http.send(request)).map { (200..<300).contains($0.status) } ?? false
                if delivered {
                    _ = try? dependencies.store.delete(key, ifVersion: value.version)
                    summary.sent += 1
                } else {
                    notice.attempts += 1
                    _ = try? records.replace(notice, at: key, version: value.version)
                    summary.pending += 1
                    dependencies.logger.warn("notice_not_delivered", ["attempts": .int(notice.attempts)])
                }
            }
        } while cursor != nil
        return summary
    }

    // MARK: Meta's callbacks

    /// Every tenant connected through `metaUserId`.
    package func tenants(ofMetaUser metaUserId: String) throws(StoreError) -> [String] {
        try MetaUserIndex(store: dependencies.store).tenants(of: metaUserId)
    }

    /// Meta says the user removed the app: the token is gone; the integration stays, shown as
    /// `disconnected` with the reason, so the tenant sees what happened.
    package func deauthorize(metaUserId: String) throws(StoreError) -> Int {
        let tenants = try tenants(ofMetaUser: metaUserId)
        for tenant in tenants {
            let expiresAt = (try? dependencies.records.loadUnlessCorrupt(IntegrationCredential.self, at: RecordKey.credential(tenant)))??
                .0.expiresAt
            try dependencies.store.delete(RecordKey.credential(tenant))
            TokenExpiry(store: dependencies.store).remove(tenant, expiresAt: expiresAt, keeping: nil)
            var before: IntegrationStatus?
            let changed = update(tenant) { integration in
                before = integration.status
                integration.status = .disconnected
                integration.statusReason = "deauthorized_at_meta"
                return true
            }
            if changed { countStatus(from: before, to: .disconnected) }
            try MetaUserIndex(store: dependencies.store).remove(metaUserId, tenant)
            enqueueNotice(CompassNotice(type: "integration.disconnected", tenant: tenant, reason: "deauthorized_at_meta", time: now))
        }
        return tenants.count
    }

    /// Meta asks to delete the user's data: everything of every tenant connected through the
    /// user (token, integration with the ad accounts the user granted, events waiting or dead,
    /// sent markers, delivery figures) and the index entry.
    package func deleteData(metaUserId: String) throws(StoreError) -> Int {
        let tenants = try tenants(ofMetaUser: metaUserId)
        for tenant in tenants {
            try purge(tenant: tenant, metaUserId: metaUserId)
            enqueueNotice(CompassNotice(type: "integration.deleted", tenant: tenant, reason: "data_deletion_request", time: now))
        }
        return tenants.count
    }

    /// Meta's longest window (62 days, physical stores) and a day: no event sent before the
    /// purge can still be queued after the marker is gone.
    package static let purgeMarkerSeconds = 63 * 86_400

    /// Deletes everything stored of `tenant` (`RecordKey.tenantRecords` and `tenantPrefixes`)
    /// and its Meta user's index entry.
    package func purge(tenant: String, metaUserId: String?) throws(StoreError) {
        let store = dependencies.store
        let credential = (try? dependencies.records.loadUnlessCorrupt(IntegrationCredential.self, at: RecordKey.credential(tenant)))??.0
        let integration = (try? dependencies.records.loadUnlessCorrupt(Integration.self, at: RecordKey.integration(tenant)))??.0
        // The marker first: a send or a drain under way writes no event of the tenant after it
        // (checked under the outbox lock), and whatever raced it is removed by the next drain.
        try store.put(RecordKey.purging(tenant), Array(now.formatted(.iso8601).utf8), ttl: Self.purgeMarkerSeconds)
        // The credential first: nothing may be left that still holds a live token.
        for key in RecordKey.tenantRecords(tenant) {
            if try store.delete(key), key == RecordKey.integration(tenant) {
                countStatus(from: integration?.status, to: nil)
                let unavailable = integration?.unavailableDatasets ?? 0
                if unavailable > 0 { dependencies.metrics.add(MetricCatalog.pixelsUnavailable, [:], -unavailable) }
            }
        }
        // The outbox under its lock: a queueing request that checked the marker before it was
        // written finishes first, and its events are deleted here.
        _ = try? EventPipeline(dependencies: dependencies, tenant: tenant).removeEvents()
        for prefix in RecordKey.tenantPrefixes(tenant) {
            // Whatever raced the purge into the outbox leaves the waiting figure with it.
            let deleted = try store.deleteAll(prefix: prefix)
            if prefix == RecordKey.outboxPrefix(tenant) { dependencies.metrics.add(MetricCatalog.eventsWaiting, [:], -deleted) }
        }
        if let metaUserId { try MetaUserIndex(store: store).remove(metaUserId, tenant) }
        DueIndex(store: store).remove(tenant, at: credential?.dueAt)
        try DueIndex(store: store, prefix: DueIndex.outboxPrefix).removeAll(of: tenant)
        WaitingSince(store: store).end(tenant)
        TokenExpiry(store: store).remove(tenant, expiresAt: credential?.expiresAt, keeping: nil)
        try DueIndex(store: store, prefix: DueIndex.qualityPrefix).removeAll(of: tenant)
    }
}
