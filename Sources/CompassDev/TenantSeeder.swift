import CompassHandlers
import CompassMeta
import CompassPlatform
import CompassStorage
import Dispatch
import Synchronization

/// Writes connected tenants straight into a store, as the callback leaves them, for load tests
/// and benchmarks (`compass-dev seed-tenants`): `seed_0` to `seed_<COUNT-1>`, each with its
/// credential (a fresh token, sealed), integration, Meta user index entry, due-index entry and
/// token-expiry entry.
/// A fraction of them, spread evenly over the ids, hold a token inside the renewal window and
/// are due now; the others were checked within the last day and come due over the coming one,
/// each about a day after its last check. With a sandbox store, every token is registered in
/// the Graph sandbox so that checks and renewals succeed.
package struct TenantSeeder: Sendable {
    package let store: any KeyValueStore
    package let sandbox: (any KeyValueStore)?
    package let cipher: CredentialCipher
    package let scopes: [String]
    package let renewalWindow: TimeInterval
    package let now: Date

    package init(
        store: any KeyValueStore, sandbox: (any KeyValueStore)?, cipher: CredentialCipher, scopes: [String],
        renewalWindow: TimeInterval, now: Date
    ) {
        self.store = store
        self.sandbox = sandbox
        self.cipher = cipher
        self.scopes = scopes
        self.renewalWindow = renewalWindow
        self.now = now
    }

    package static func tenant(_ index: Int) -> String { "seed_\(index)" }

    /// Whether tenant `index` is one of the `fraction` due now: every 1/fraction-th id.
    package static func isDue(_ index: Int, fraction: Double) -> Bool {
        (Double(index + 1) * fraction).rounded(.down) > (Double(index) * fraction).rounded(.down)
    }

    /// Where in the coming day tenant `index` comes due, in (0, 1): a low-discrepancy sequence,
    /// so that any number of tenants spreads evenly (and none is due the moment it is seeded).
    package static func dayFraction(_ index: Int) -> Double {
        (Double(index + 1) * 0.618_033_988_749_894_9).truncatingRemainder(dividingBy: 1)
    }

    /// Tenants written per batch of writes (five records each: 100, one etcd transaction).
    package static let batchTenants = 20

    /// Seeds tenants `0..<count` on all cores, in batches; returns how many were written.
    package func seed(count: Int, dueFraction: Double) throws(StoreError) -> Int {
        // A store with no credential yet holds none from before the due index: nothing to walk.
        let fresh = try store.list(prefix: RecordKey.credentialsPrefix, after: nil, limit: 1).entries.isEmpty
        let batches = (count + Self.batchTenants - 1) / Self.batchTenants
        let workers = max(1, min(batches, 2 * ProcessInfo.processInfo.activeProcessorCount))
        let failure = Mutex<StoreError?>(nil)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var batch = worker
            while batch < batches, failure.withLock({ $0 == nil }) {
                let indices = (batch * Self.batchTenants)..<min(count, (batch + 1) * Self.batchTenants)
                do throws(StoreError) {
                    try seed(indices.map { ($0, Self.isDue($0, fraction: dueFraction)) })
                } catch {
                    failure.withLock { $0 = error }
                }
                batch += workers
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        // Each seeded tenant connected: the integrations gauge counts it, as a callback's would.
        let metrics = Metrics()
        metrics.add(MetricCatalog.integrations, ["status": IntegrationStatus.connected.rawValue], count)
        try MetricsLedger(store: store).flush(metrics, now: now, random: SecureRandom())
        if fresh {
            // Nothing from before the due index, the gauges or the expiry index, nothing expired:
            // neither a walk nor a sweep is due.
            try store.put(RecordKey.dueIndexComplete, Array(now.formatted(.iso8601).utf8), ttl: nil)
            try store.put(MetricsLedger.integrationsCountedKey, Array(now.formatted(.iso8601).utf8), ttl: nil)
            try store.put(RecordKey.sweepNext, Array(String(now.addingTimeInterval(StoreSweep.interval).unixSeconds).utf8), ttl: nil)
            try store.put(TestEventCodeExpiry.walkComplete, Array(now.formatted(.iso8601).utf8), ttl: nil)
        }
        return count
    }

    /// Tenants, each written in the callback's order (due entry, credential, its token's entry
    /// in the expiry index, user index, integration), as one batch of writes (and one for their
    /// sandbox tokens). The batch holds every tenant's first record, then every tenant's second,
    /// and so on: each tenant's still come in that order, and the records of one kind that share
    /// a folder (credentials, integrations) come one after another, which a file store places
    /// under one taking of the folder's lock. A batch that fails part way (a full disk) may
    /// leave its tenants as a callback that died would (due entries and credentials without
    /// their integrations): seed a failed store anew.
    package func seed(_ tenants: [(index: Int, due: Bool)]) throws(StoreError) {
        var byTenant: [[BatchWrite]] = []
        var tokens: [BatchWrite] = []
        for (index, due) in tenants {
            let (records, token) = try self.records(index, due: due)
            byTenant.append(records)
            if let token { tokens.append(token) }
        }
        var writes: [BatchWrite] = []
        writes.reserveCapacity(byTenant.count * (byTenant.first?.count ?? 0))
        for kind in (byTenant.first ?? []).indices {
            for records in byTenant { writes.append(records[kind]) }
        }
        if let sandbox, !tokens.isEmpty { _ = try sandbox.write(tokens) }
        _ = try store.write(writes)
    }

    /// The writes of one tenant, and of its token in the sandbox when there is one.
    private func records(_ index: Int, due: Bool) throws(StoreError) -> ([BatchWrite], BatchWrite?) {
        let tenant = Self.tenant(index)
        let user = String(2_000_000_000 + index)
        let token = "EAAS" + Base64URL.encode(Crypto.randomBytes(30))
        let dueAt = due ? now : now.addingTimeInterval(Self.dayFraction(index) * DueIndex.period)
        // As tenants that connected on different days: tokens not due run out over 50 days past
        // the renewal window (one minute for them all would be no real deployment's index).
        let expiresAt =
            due
            ? now.addingTimeInterval(renewalWindow / 2)
            : now.addingTimeInterval(renewalWindow + 86_400 + Self.dayFraction(index) * 50 * 86_400)
        var sandboxToken: BatchWrite?
        if sandbox != nil {
            let record = GraphSandbox.TokenRecord(
                userId: user, scopes: scopes, longLived: true, expiresAt: expiresAt.unixSeconds,
                issuedAt: now.unixSeconds - 86_400)
            sandboxToken = .put("tokens/" + Hex.encode(Crypto.sha256(token)), JSON.encode(record), ttl: nil)
        }
        let credential = IntegrationCredential(
            tenantId: tenant, token: cipher.seal(token, context: IntegrationCredential.sealContext(tenantId: tenant)),
            expiresAt: expiresAt, scopes: scopes, metaUserId: user, updatedAt: now,
            checkedAt: dueAt.addingTimeInterval(-DueIndex.period), dueAt: dueAt)
        let integration = Integration(
            tenantId: tenant, status: .connected, metaUserId: user,
            config: .init(
                adAccounts: [AdAccount(id: "act_1000001", name: "Sandbox Ads 1")], adAccountId: "act_1000001", pixelId: "2000101"),
            grantedScopes: scopes, missingScopes: [], connectedAt: now.addingTimeInterval(-30 * 86_400), updatedAt: now)
        // Its pixel's match quality is fetched along its next check, as every tenant's is.
        return (
            [
                .put(DueIndex.key(tenant, at: dueAt), [], ttl: nil),
                .put(RecordKey.credential(tenant), JSON.encode(credential), ttl: nil),
                .put(DueIndex.key(tenant, at: TokenExpiry.bucket(expiresAt), prefix: TokenExpiry.prefix), [], ttl: nil),
                .put(MetaUserIndex.key(user, tenant), Array("{}".utf8), ttl: nil),
                .put(RecordKey.integration(tenant), JSON.encode(integration), ttl: nil),
            ], sandboxToken
        )
    }
}

extension DevTools {
    /// `compass-dev seed-tenants COUNT [--due-fraction F] [--sandbox-state DIR]` with the store
    /// of `STORE_URL` (a file store written without fsync) and the key of `CREDENTIALS_KEY`.
    package static func seedTenants(
        environment: [String: String], count: Int, dueFraction: Double,
        sandboxState: String?
    ) throws -> Int {
        let config = try Config.load(from: environment, workingDirectory: "/")
        guard let keys = config.platform.credentialKeys else { throw ConfigError(variable: "CREDENTIALS_KEY", problem: "is not set") }
        let store: any KeyValueStore
        if case .files(let root) = config.store.location {
            store = try FileStore(root: root, durable: false)
        } else {
            store = try config.store.open()
        }
        let sandbox = try sandboxState.map { state throws(StoreError) in try FileStore(root: state, durable: false) }
        let seeder = TenantSeeder(
            store: store, sandbox: sandbox, cipher: CredentialCipher(keys: keys, random: SecureRandom()),
            scopes: config.meta.scopes, renewalWindow: config.routes.renewalWindow, now: Date())
        return try seeder.seed(count: count, dueFraction: dueFraction)
    }
}
