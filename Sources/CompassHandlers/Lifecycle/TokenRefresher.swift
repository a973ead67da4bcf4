import CompassMeta
import CompassPlatform
import CompassStorage
import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The token job of refresh-cron. The due index (`DueIndex`) says which tenants have work
/// now: their tokens are renewed when they enter the renewal window, checked with
/// `debug_token` about once a day otherwise, and turned into `needs_reauth` when Meta refuses
/// them; a run reads nothing else. Only when there is more to do does a run walk every
/// credential: to give an entry to credentials written before the index existed (once), and
/// to re-encrypt every credential sealed under a previous key (while one is configured).
/// A per-tenant lease and compare-and-swap on the credential keep overlapping runs from
/// renewing a token twice. A token just checked is used at once for the tenant's daily
/// match-quality figures (`QualityFetcher.fetchAlongCheck`).
package struct TokenRefresher {
    package let dependencies: Dependencies
    /// Meta's usage figures as this run's calls report them: the run slows down, then stops
    /// taking work, as they near Meta's limits.
    package let usage = GraphUsage()
    /// The match-quality figures fetched along this run's checks.
    package let quality = Tally(QualityFetcher.Summary())
    /// Waits the given seconds between calls when Meta's usage is high (a test records it).
    package var pause: @Sendable (Double) -> Void = { seconds in usleep(UInt32(seconds * 1_000_000)) }
    package static let leaseSeconds = 120
    package static let pageSize = 64

    package struct Summary: Codable, Sendable, Equatable {
        /// Entries of the due index this run took.
        package var integrations = 0
        package var renewed = 0
        package var checked = 0
        package var rotated = 0
        /// Queued and dead-lettered events sealed again under the current key.
        package var eventsRotated = 0
        /// Due entries (and, during a walk, credentials) this run did not reach because its
        /// time budget was spent: the next run goes on with them.
        package var left = 0
        /// Credentials and queued events still sealed under a previous key after this run:
        /// remove `CREDENTIALS_KEY_PREVIOUS` only once this is 0.
        package var underPreviousKey = 0
        package var needsReauth = 0
        package var failed = 0
        package var skipped = 0
        /// Entries that were not their credential's own (the tenant disconnected, or was
        /// scheduled again meanwhile): dropped without a Graph call.
        package var stale = 0
        /// Credentials written before the due index, given their entry by this run's walk.
        package var indexed = 0
        /// The run stopped taking work because Meta's usage headers neared its limits.
        package var throttled = false
    }

    /// What became of one tenant's token in a run.
    package enum Renewal: Sendable {
        case unchanged, renewed, checked, needsReauth, failed, skipped, stale
    }

    package var now: Date { dependencies.clock.now }
    private var index: DueIndex { DueIndex(store: dependencies.store) }

    /// What is due, or as much of it as fits before `deadline`; then, if the credentials need
    /// a walk, as much of the walk as fits.
    package func run(until deadline: Date? = nil) throws(StoreError) -> Summary {
        var total = try runDue(until: deadline)
        let rotating = dependencies.config.platform.credentialKeys?.previous != nil
        let indexed = try dependencies.store.get(RecordKey.dueIndexComplete) != nil
        guard rotating || !indexed else { return total }
        guard deadline.map({ now < $0 }) ?? true else {
            // Not started: while rotating, every credential may still be under the old key.
            if rotating { total.left += try dependencies.store.count(prefix: RecordKey.credentialsPrefix) }
            return total
        }
        try walk(until: deadline, rotating: rotating, into: &total)
        return total
    }

    /// The due entries in time order, the Graph calls of a page overlapping (`META_CONCURRENCY`).
    private func runDue(until deadline: Date?) throws(StoreError) -> Summary {
        let job = TokenJob(refresher: self, tally: Tally(Summary()))
        let run = try DueJobRunner(clock: dependencies.clock).run(job, until: deadline)
        var total = job.tally.value
        total.left = run.left
        total.throttled = run.throttled
        return total
    }

    /// Each due token renewed or checked; the walk indexes tokens from before the index.
    private struct TokenJob: DueJob {
        let refresher: TokenRefresher
        let tally: Tally<Summary>

        var index: DueIndex { DueIndex(store: refresher.dependencies.store) }
        var concurrency: Int { refresher.dependencies.config.routes.metaConcurrency }
        var usage: GraphUsage? { refresher.usage }
        func indexOnce() {}
        func pause(_ seconds: Double) { refresher.pause(seconds) }

        func work(_ entry: (key: String, tenant: String)) {
            let (outcome, rotated) = refresher.refresh(entry.tenant, entry: entry.key)
            // The day's check brings the quality figures; a renewal, which may be one of many
            // after an outage, does not wait for them (the next check, a day on, fetches).
            if outcome == .checked {
                let fetched = QualityFetcher(dependencies: refresher.dependencies).fetchAlongCheck(entry.tenant)
                refresher.quality.add { $0 = $0 + fetched }
            }
            tally.add { total in
                total.integrations += 1
                if rotated { total.rotated += 1 }
                switch outcome {
                case .renewed: total.renewed += 1
                case .checked: total.checked += 1
                case .needsReauth: total.needsReauth += 1
                case .failed: total.failed += 1
                case .skipped: total.skipped += 1
                case .stale: total.stale += 1
                case .unchanged: break
                }
            }
        }
    }

    /// Every credential page by page from where the last walk stopped: those without an
    /// entry in the due index get one (spread over the coming day), and with a previous key
    /// configured, those sealed under it are sealed again under the current one. The walk
    /// ends by marking the index complete (no previous key) or by rotating queued events.
    private func walk(until deadline: Date?, rotating: Bool, into total: inout Summary) throws(StoreError) {
        let store = dependencies.store
        var cursor = try dependencies.records.cursor(at: RecordKey.refreshCursor)
        repeat {
            if let deadline, now >= deadline {
                try dependencies.records.setCursor(cursor, at: RecordKey.refreshCursor)
                var rest = 0
                var after = cursor
                repeat {
                    let page = try store.scan(prefix: RecordKey.credentialsPrefix, after: after, limit: 500)
                    rest += page.entries.count
                    after = page.cursor
                } while after != nil
                total.left += rest
                return
            }
            let page = try store.scan(prefix: RecordKey.credentialsPrefix, after: cursor, limit: Self.pageSize)
            for (key, _) in page.entries {
                let tenant = String(key.dropFirst(RecordKey.credentialsPrefix.count))
                let (indexed, rotated, underPreviousKey) = prepare(tenant, rotating: rotating)
                if indexed { total.indexed += 1 }
                if rotated { total.rotated += 1 }
                if underPreviousKey { total.underPreviousKey += 1 }
            }
            cursor = page.cursor
        } while cursor != nil
        try dependencies.records.setCursor(nil, at: RecordKey.refreshCursor)
        guard rotating else {
            try store.put(RecordKey.dueIndexComplete, Array(now.formatted(.iso8601).utf8))
            return
        }
        if let cipher = try? dependencies.cipher() {
            for root in [RecordKey.outboxRoot, RecordKey.deadRoot] {
                let (rotated, left) = try rotateEvents(under: root, cipher: cipher)
                total.eventsRotated += rotated
                total.underPreviousKey += left
            }
        }
    }

    /// One credential of the walk, under its tenant's lease: whether it was given an entry in
    /// the due index, whether it was sealed again, and whether it is still under a previous key.
    private func prepare(_ tenant: String, rotating: Bool) -> (indexed: Bool, rotated: Bool, underPreviousKey: Bool) {
        guard Tenant.isValidId(tenant), let cipher = try? dependencies.cipher() else { return (false, false, false) }
        let store = dependencies.store
        let records = dependencies.records
        let leaseKey = RecordKey.refreshLease(tenant)
        guard let lease = try? store.create(leaseKey, Array("{}".utf8), ttl: Self.leaseSeconds) else {
            let stale = (try? records.load(IntegrationCredential.self, at: RecordKey.credential(tenant)))??.0
            return (false, false, rotating && stale.map { cipher.needsRotation($0.token) } ?? false)
        }
        defer { _ = try? store.delete(leaseKey, ifVersion: lease) }
        guard let (credential, version) = try? records.load(IntegrationCredential.self, at: RecordKey.credential(tenant)) else {
            return (false, false, false)
        }
        var updated = credential
        let connected = (try? records.load(Integration.self, at: RecordKey.integration(tenant)))??.0.status == .connected
        let indexing = connected && credential.dueAt == nil
        if indexing {
            // Checked before (a day after that, but not in the past) or never: some time today.
            let daily =
                credential.checkedAt.map { max(now, $0.addingTimeInterval(DueIndex.period)) }
                ?? now.addingTimeInterval(DueIndex.randomFraction(dependencies.random) * DueIndex.period)
            let renewal = credential.expiresAt.map { max(now, $0.addingTimeInterval(-dependencies.config.routes.renewalWindow)) }
            updated.dueAt = min(daily, renewal ?? daily)
        }
        let sealing = rotating && cipher.needsRotation(credential.token)
        if sealing {
            do {
                let token = try dependencies.openToken(credential, tenant: tenant)
                updated.token = cipher.seal(token, context: IntegrationCredential.sealContext(tenantId: tenant))
            } catch {
                dependencies.logger.error("credential_unreadable", ["tenant": .string(tenant), "error": .string("\(error)")])
                return (false, false, true)
            }
        }
        guard indexing || sealing else { return (false, false, false) }
        if let dueAt = updated.dueAt, indexing {
            guard (try? index.add(tenant, at: dueAt)) != nil else { return (false, false, sealing) }
        }
        updated.updatedAt = now
        guard (try? records.replace(updated, at: RecordKey.credential(tenant), version: version)) != nil else {
            // Written meanwhile (a reconnect, sealed and indexed anew): its writer's version wins.
            return (false, false, false)
        }
        return (indexing, sealing, false)
    }

    /// Seals every event under `root` (`meta/outbox/`, `meta/dead/`) that an older key sealed
    /// under the current one, with compare-and-swap (a drain may be moving it meanwhile); only
    /// while a previous key is configured. Returns how many were sealed again and how many
    /// remain under an older key.
    private func rotateEvents(under root: String, cipher: CredentialCipher) throws(StoreError) -> (rotated: Int, left: Int) {
        var rotated = 0
        var left = 0
        var cursor: String? = nil
        repeat {
            let page = try dependencies.store.scan(prefix: root, after: cursor, limit: 500)
            cursor = page.cursor
            for (key, value) in page.entries {
                let parts = key.dropFirst(root.count).split(separator: "/")
                guard parts.count == 2, let entry = try? JSON.decode(OutboxEntry.self, from: value.value),
                    cipher.needsRotation(entry.sealedEvent)
                else { continue }
                guard let sealed = try? entry.resealed(tenant: String(parts[0]), dedupKey: String(parts[1]), cipher: cipher),
                    (try? dependencies.records.replace(sealed, at: key, version: value.version)) != nil
                else {
                    left += 1
                    continue
                }
                rotated += 1
            }
        } while cursor != nil
        return (rotated, left)
    }

    /// One due entry of `tenant`, under its lease: the outcome, and whether its credential was
    /// sealed again under the current key.
    package func refresh(_ tenant: String, entry: String) -> (Renewal, rotated: Bool) {
        guard Tenant.isValidId(tenant) else { return (.skipped, false) }
        guard let cipher = try? dependencies.cipher(), var graph = try? dependencies.graph() else { return (.failed, false) }
        graph.usage = usage
        let store = dependencies.store
        let leaseKey = RecordKey.refreshLease(tenant)
        guard let lease = try? store.create(leaseKey, Array("{}".utf8), ttl: Self.leaseSeconds) else { return (.skipped, false) }
        defer { _ = try? store.delete(leaseKey, ifVersion: lease) }
        let (credential, version, token): (IntegrationCredential, UInt64, String)
        switch dueCredential(tenant, entry: entry) {
        case .finished(let outcome): return (outcome, false)
        case .ready(let found, let foundVersion, let opened): (credential, version, token) = (found, foundVersion, opened)
        }
        let asked: (IntegrationCredential, Renewal)
        do throws(GraphFailure) {
            guard let answer = try askMeta(graph, tenant, credential, token: token, cipher: cipher) else {
                IntegrationLifecycle(dependencies: dependencies).markNeedsReauth(tenant: tenant, reason: "token_invalid")
                _ = try? store.delete(entry)
                return (.needsReauth, false)
            }
            asked = answer
        } catch {
            if let reason = error.reauthReason {
                IntegrationLifecycle(dependencies: dependencies).markNeedsReauth(tenant: tenant, reason: reason)
                _ = try? store.delete(entry)
                return (.needsReauth, false)
            }
            dependencies.logger.warn("token_refresh_failed", error.logFields)
            record(tenant, "failed", "\(error.kind)")
            reschedule(tenant, credential, version: version, at: now.addingTimeInterval(DueIndex.retryDelay))
            return (.failed, false)
        }
        return save(tenant, asked.0, outcome: asked.1, replacing: credential, version: version, token: token, cipher: cipher)
    }

    private enum DueCredential {
        case ready(IntegrationCredential, UInt64, token: String)
        case finished(Renewal)
    }

    /// The tenant's credential and its token, when this entry is its due entry and the
    /// integration is connected; otherwise what became of the entry (an entry left behind is
    /// dropped without a Graph call; an unreadable credential is a failure, recorded).
    private func dueCredential(_ tenant: String, entry: String) -> DueCredential {
        let records = dependencies.records
        let loaded: (IntegrationCredential, UInt64)?
        do {
            loaded = try records.load(IntegrationCredential.self, at: RecordKey.credential(tenant))
        } catch .corrupt {
            dependencies.logger.error("credential_unreadable", ["tenant": .string(tenant), "error": "corrupt"])
            record(tenant, "failed", "credential_unreadable")
            return .finished(.failed)
        } catch {
            return .finished(.skipped)
        }
        let integration = (try? records.load(Integration.self, at: RecordKey.integration(tenant)))??.0
        guard let (credential, version) = loaded, credential.dueAt.map({ DueIndex.key(tenant, at: $0) }) == entry,
            integration?.status == .connected
        else {
            _ = try? dependencies.store.delete(entry)
            return .finished(.stale)
        }
        do {
            return .ready(credential, version, token: try dependencies.openToken(credential, tenant: tenant))
        } catch {
            dependencies.logger.error("credential_unreadable", ["tenant": .string(tenant), "error": .string("\(error)")])
            record(tenant, "failed", "credential_unreadable")
            reschedule(tenant, credential, version: version, at: now.addingTimeInterval(DueIndex.period))
            return .finished(.failed)
        }
    }

    /// Meta's word on the token: renewed when it nears its end (a system-user token never is:
    /// it does not expire), otherwise checked with `debug_token`. Nil when Meta says the token
    /// is no longer valid. Only Graph calls in here.
    private func askMeta(
        _ graph: GraphClient, _ tenant: String, _ credential: IntegrationCredential, token: String,
        cipher: CredentialCipher
    ) throws(GraphFailure) -> (IntegrationCredential, Renewal)? {
        var updated = credential
        if credential.tokenType != "system_user", let expires = credential.expiresAt,
            expires.timeIntervalSince(now) < dependencies.config.routes.renewalWindow
        {
            // Meta's answer carries the new lifetime; the next daily check confirms the rest.
            let renewed = try graph.exchangeForLongLivedToken(token)
            updated.token = cipher.seal(renewed.accessToken, context: IntegrationCredential.sealContext(tenantId: tenant))
            updated.expiresAt = renewed.expiresIn.map { now.addingTimeInterval(TimeInterval($0)) }
            return (updated, .renewed)
        }
        let info = try graph.debugToken(token)
        guard info.isValid else { return nil }
        if let at = info.expiresAt, at > 0 { updated.expiresAt = Date(unixSeconds: at) }
        if let data = info.dataAccessExpiresAt, data > 0 { updated.dataAccessExpiresAt = Date(unixSeconds: data) }
        if let scopes = info.scopes { updated.scopes = scopes }
        return (updated, .checked)
    }

    /// The renewed or checked credential written back with its next due time (sealed again
    /// under the current key if an older one sealed it), and its entry moved.
    private func save(
        _ tenant: String, _ checked: IntegrationCredential, outcome: Renewal, replacing credential: IntegrationCredential,
        version: UInt64, token: String, cipher: CredentialCipher
    ) -> (Renewal, rotated: Bool) {
        var updated = checked
        let rotated = outcome != .renewed && cipher.needsRotation(updated.token)
        if rotated { updated.token = cipher.seal(token, context: IntegrationCredential.sealContext(tenantId: tenant)) }
        updated.checkedAt = now
        updated.updatedAt = now
        updated.dueAt = max(
            now.addingTimeInterval(DueIndex.retryDelay),
            DueIndex.next(
                for: updated, now: now, renewalWindow: dependencies.config.routes.renewalWindow,
                random: dependencies.random))
        // The new token's expiry entry before the credential that names it; a failure costs the
        // gauge a token until its next change, not the renewal.
        let expiry = TokenExpiry(store: dependencies.store)
        try? expiry.add(tenant, expiresAt: updated.expiresAt, replacing: credential.expiresAt)
        guard (try? index.add(tenant, at: updated.dueAt!)) != nil,
            (try? dependencies.records.replace(updated, at: RecordKey.credential(tenant), version: version)) != nil
        else {
            // Another writer (a reconnect) changed the credential meanwhile: its token wins, and
            // it was sealed under the current key and given its own entry.
            return (.skipped, false)
        }
        index.remove(tenant, at: credential.dueAt, keeping: updated.dueAt)
        expiry.remove(tenant, expiresAt: credential.expiresAt, keeping: updated.expiresAt)
        record(tenant, outcome == .renewed ? "renewed" : "checked", nil)
        dependencies.logger.info(
            "token_\(outcome == .renewed ? "renewed" : "checked")",
            [
                "tenant": .string(tenant), "expires_at": .string(updated.expiresAt?.formatted(.iso8601) ?? "never"),
            ])
        return (outcome, rotated)
    }

    /// Moves the tenant's entry to `instant` after work that could not be done now.
    private func reschedule(_ tenant: String, _ credential: IntegrationCredential, version: UInt64, at instant: Date) {
        var moved = credential
        moved.dueAt = instant
        guard (try? index.add(tenant, at: instant)) != nil,
            (try? dependencies.records.replace(moved, at: RecordKey.credential(tenant), version: version)) != nil
        else { return }
        index.remove(tenant, at: credential.dueAt, keeping: instant)
    }

    private func record(_ tenant: String, _ outcome: String, _ detail: String?) {
        IntegrationLifecycle(dependencies: dependencies).update(tenant) { integration in
            integration.lastRefresh = RefreshOutcome(outcome: outcome, at: now, detail: detail)
            return true
        }
    }
}
