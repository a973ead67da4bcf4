import CompassMeta
import CompassPlatform
import CompassStorage

#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

/// The token job of refresh-cron: walks every stored credential page by page, renews tokens of
/// connected integrations that expire within the window, checks the others with `debug_token`
/// once a day, re-encrypts every credential sealed under a previous key whatever its
/// integration's status, and turns tokens Meta refuses into `needs_reauth`.
/// A per-tenant lease and compare-and-swap on the credential keep overlapping runs from
/// renewing a token twice.
package struct TokenRefresher {
    package let dependencies: Dependencies
    package static let checkInterval: TimeInterval = 24 * 3600
    package static let leaseSeconds = 120
    package static let pageSize = 64

    package struct Summary: Codable, Sendable, Equatable {
        package var integrations = 0
        package var renewed = 0
        package var checked = 0
        package var rotated = 0
        /// Queued and dead-lettered events sealed again under the current key.
        package var eventsRotated = 0
        /// Credentials this run did not reach because its time budget was spent: the next run
        /// goes on from where it stopped.
        package var left = 0
        /// Credentials and queued events still sealed under a previous key after this run:
        /// remove `CREDENTIALS_KEY_PREVIOUS` only once this is 0.
        package var underPreviousKey = 0
        package var needsReauth = 0
        package var failed = 0
        package var skipped = 0
    }

    package enum Outcome: Sendable {
        case unchanged, renewed, checked, needsReauth, failed, skipped
    }

    package var now: Date { dependencies.clock.now }

    /// Every credential, or as many as fit before `deadline`: then the place it stopped is kept
    /// and the next run begins there.
    package func run(until deadline: Date? = nil) throws(StoreError) -> Summary {
        let summary = Mutex(Summary())
        let store = dependencies.store
        var cursor = try dependencies.records.cursor(at: RecordKey.refreshCursor)
        var stoppedAt: String?? = nil
        repeat {
            let page = try store.list(prefix: RecordKey.credentialsPrefix, after: cursor, limit: Self.pageSize)
            let tenants = page.entries.map { String($0.key.dropFirst(RecordKey.credentialsPrefix.count)) }
            // Bounded concurrency: Meta calls overlap, memory stays one page.
            // The next tenant to take, and whether the deadline passed (then none is taken).
            let taking = Mutex((next: 0, spent: false))
            // Graph calls in flight at once (META_CONCURRENCY): they are network-bound against Meta.
            DispatchQueue.concurrentPerform(iterations: min(dependencies.config.metaConcurrency, max(tenants.count, 1))) { _ in
                while true {
                    let index = taking.withLock { state -> Int? in
                        guard state.next < tenants.count, !state.spent else { return nil }
                        if let deadline, dependencies.clock.now >= deadline {
                            state.spent = true
                            return nil
                        }
                        defer { state.next += 1 }
                        return state.next
                    }
                    guard let index else { return }
                    let (outcome, rotated, underPreviousKey) = refresh(tenants[index])
                    summary.withLock { total in
                        total.integrations += 1
                        if rotated { total.rotated += 1 }
                        if underPreviousKey { total.underPreviousKey += 1 }
                        switch outcome {
                        case .renewed: total.renewed += 1
                        case .checked: total.checked += 1
                        case .needsReauth: total.needsReauth += 1
                        case .failed: total.failed += 1
                        case .skipped: total.skipped += 1
                        case .unchanged: break
                        }
                    }
                }
            }
            let (taken, spent) = taking.withLock { ($0.next, $0.spent) }
            if spent {
                // Every tenant before `taken` was taken (and finished); the next run starts there.
                stoppedAt = .some(taken > 0 ? page.entries[taken - 1].key : cursor)
                break
            }
            cursor = page.cursor
        } while cursor != nil
        var total = summary.withLock { $0 }
        if let stoppedAt {
            try dependencies.records.setCursor(stoppedAt, at: RecordKey.refreshCursor)
            total.left = max(0, try store.count(prefix: RecordKey.credentialsPrefix) - total.integrations)
            return total
        }
        try dependencies.records.setCursor(nil, at: RecordKey.refreshCursor)
        if dependencies.config.credentialKeys?.previous != nil, let cipher = try? dependencies.cipher() {
            for root in [RecordKey.outboxRoot, RecordKey.deadRoot] {
                let (rotated, left) = try rotateEvents(under: root, cipher: cipher)
                total.eventsRotated += rotated
                total.underPreviousKey += left
            }
        }
        return total
    }

    /// Seals every event under `root` (`meta/outbox/`, `meta/dead/`) that an older key sealed
    /// under the current one, with compare-and-swap (a drain may be moving it meanwhile); only
    /// while a previous key is configured. Returns how many were sealed again and how many
    /// remain under an older key.
    private func rotateEvents(under root: String, cipher: CredentialCipher) throws(StoreError) -> (rotated: Int, left: Int) {
        var rotated = 0, left = 0
        var cursor: String? = nil
        repeat {
            let page = try dependencies.store.list(prefix: root, after: cursor, limit: 500)
            cursor = page.cursor
            for (key, value) in page.entries {
                let parts = key.dropFirst(root.count).split(separator: "/")
                guard parts.count == 2, let entry = try? JSON.decode(OutboxEntry.self, from: value.value),
                      cipher.needsRotation(entry.sealedEvent) else { continue }
                guard let sealed = try? entry.resealed(tenant: String(parts[0]), dedupKey: String(parts[1]), cipher: cipher),
                      (try? dependencies.records.replace(sealed, at: key, version: value.version)) != nil else {
                    left += 1
                    continue
                }
                rotated += 1
            }
        } while cursor != nil
        return (rotated, left)
    }

    /// One tenant, under its lease: the outcome, whether its credential was re-encrypted, and
    /// whether it is still sealed under a previous key.
    package func refresh(_ tenant: String) -> (Outcome, rotated: Bool, underPreviousKey: Bool) {
        guard Tenant.isValidId(tenant) else { return (.skipped, false, false) }
        let records = dependencies.records
        guard let cipher = try? dependencies.cipher(), let graph = try? dependencies.graph() else { return (.failed, false, false) }
        let store = dependencies.store
        let leaseKey = RecordKey.refreshLease(tenant)
        guard let lease = try? store.create(leaseKey, Array("{}".utf8), ttl: Self.leaseSeconds) else {
            let stale = (try? records.load(IntegrationCredential.self, at: RecordKey.credential(tenant)))??.0
            return (.skipped, false, stale.map { cipher.needsRotation($0.token) } ?? false)
        }
        defer { _ = try? store.delete(leaseKey, ifVersion: lease) }

        guard let (credential, version) = try? records.load(IntegrationCredential.self, at: RecordKey.credential(tenant)) else {
            return (.unchanged, false, false)
        }
        let stale = cipher.needsRotation(credential.token)
        // Renewals and checks are for connected integrations; rotation is for every credential.
        let integration = (try? records.load(Integration.self, at: RecordKey.integration(tenant)))??.0
        let connected = integration?.status == .connected
        guard connected || stale else { return (.unchanged, false, false) }
        let lifecycle = IntegrationLifecycle(dependencies: dependencies)
        let context = IntegrationCredential.sealContext(tenantId: tenant)
        let token: String
        do {
            token = try dependencies.openToken(credential, tenant: tenant)
        } catch {
            dependencies.logger.error("credential_unreadable", ["tenant": .string(tenant), "error": .string("\(error)")])
            record(tenant, "failed", "credential_unreadable")
            return (.failed, false, stale)
        }

        var updated = credential
        var outcome = Outcome.unchanged
        let window = TimeInterval(dependencies.config.refreshWindowDays * 86_400)
        // Only Graph calls in here: anything else that could fail must be handled before.
        do throws(GraphFailure) {
            // Not connected (waiting for the tenant, or disconnected): nothing to ask Meta.
            if connected, let expires = credential.expiresAt, expires.timeIntervalSince(now) < window {
                // Meta's answer carries the new lifetime; the next daily check confirms the rest.
                let renewed = try graph.exchangeForLongLivedToken(token)
                updated.token = cipher.seal(renewed.accessToken, context: context)
                updated.expiresAt = renewed.expiresIn.map { now.addingTimeInterval(TimeInterval($0)) }
                updated.checkedAt = now
                outcome = .renewed
            } else if connected, (credential.checkedAt ?? .distantPast).addingTimeInterval(Self.checkInterval) <= now {
                let info = try graph.debugToken(token)
                guard info.isValid else {
                    lifecycle.markNeedsReauth(tenant: tenant, reason: "token_invalid")
                    return (.needsReauth, false, stale)
                }
                if let at = info.expiresAt, at > 0 { updated.expiresAt = Date(unixSeconds: at) }
                if let data = info.dataAccessExpiresAt, data > 0 { updated.dataAccessExpiresAt = Date(unixSeconds: data) }
                if let scopes = info.scopes { updated.scopes = scopes }
                updated.checkedAt = now
                outcome = .checked
            }
        } catch {
            if let reason = error.reauthReason {
                lifecycle.markNeedsReauth(tenant: tenant, reason: reason)
                return (.needsReauth, false, stale)
            }
            dependencies.logger.warn("token_refresh_failed", error.logFields)
            record(tenant, "failed", "\(error.kind)")
            return (.failed, false, stale)
        }

        // Re-encrypt under the current key when the record was sealed under an older one.
        let rotated = outcome != .renewed && cipher.needsRotation(updated.token)
        if rotated { updated.token = cipher.seal(token, context: context) }
        guard outcome != .unchanged || rotated else { return (.unchanged, false, false) }
        updated.updatedAt = now
        do {
            try records.replace(updated, at: RecordKey.credential(tenant), version: version)
        } catch {
            // Another writer (a reconnect) changed the credential meanwhile: its token wins, and
            // it was sealed under the current key.
            return (.skipped, false, false)
        }
        if outcome == .renewed || outcome == .checked {
            record(tenant, outcome == .renewed ? "renewed" : "checked", nil)
            dependencies.logger.info("token_\(outcome == .renewed ? "renewed" : "checked")", [
                "tenant": .string(tenant), "expires_at": .string(updated.expiresAt?.formatted(.iso8601) ?? "never"),
            ])
        }
        return (outcome, rotated, false)
    }

    private func record(_ tenant: String, _ outcome: String, _ detail: String?) {
        IntegrationLifecycle(dependencies: dependencies).update(tenant) { integration in
            integration.lastRefresh = RefreshOutcome(outcome: outcome, at: now, detail: detail)
            return true
        }
    }
}
