import CompassMeta
import CompassPlatform
import CompassStorage

/// The records of DESIGN section 5 and where they live in the key-value store.
package enum IntegrationStatus: String, Codable, Sendable {
    case connected
    case needsReauth = "needs_reauth"
    case disconnected
}

package struct Integration: Codable, Sendable, Equatable {
    package struct Settings: Codable, Sendable, Equatable {
        package var adAccounts: [AdAccount] = []
        package var adAccountId: String?
        package var pixelId: String?
        package var testEventCode: String?
        /// When `testEventCode` stops applying; refresh-cron then clears it. Nil only on a code
        /// saved before codes expired, which refresh-cron gives 24 hours once.
        package var testEventCodeExpiresAt: Date?
        /// The dataset of each Meta `action_source` that does not go to `pixelId` (`DatasetRoutes`).
        package var datasets: [String: String]?

        package init(
            adAccounts: [AdAccount] = [], adAccountId: String? = nil, pixelId: String? = nil, testEventCode: String? = nil,
            testEventCodeExpiresAt: Date? = nil, datasets: [String: String]? = nil
        ) {
            self.adAccounts = adAccounts
            self.adAccountId = adAccountId
            self.pixelId = pixelId
            self.testEventCode = testEventCode
            self.testEventCodeExpiresAt = testEventCodeExpiresAt
            self.datasets = datasets
        }
    }

    package var tenantId: String
    package var provider: String = "meta"
    package var status: IntegrationStatus
    package var statusReason: String?
    /// The app-scoped id of the Meta user who granted the token; Meta's callbacks name it.
    package var metaUserId: String
    package var config: Settings
    package var grantedScopes: [String]
    package var missingScopes: [String]
    package var connectedAt: Date
    package var updatedAt: Date
    /// The last token renewal or check by refresh-cron.
    package var lastRefresh: RefreshOutcome?
    /// `user`, or `system_user` for a Business Integration System User token (Facebook Login
    /// for Business): such a token does not expire and is never exchanged, only checked.
    package var tokenType: String?
    /// The client's business, for a system-user token.
    package var clientBusinessId: String?
    /// Set while Meta says the chosen pixel does not exist or cannot be reached (no longer
    /// shared): events wait in the outbox; cleared by a delivery or by choosing another pixel.
    package var pixelProblem: PixelProblem?
    /// The same for each routed dataset other than `pixelId`, by dataset id (`problem(of:)`).
    package var datasetProblems: [String: PixelProblem]?

    package init(
        tenantId: String, provider: String = "meta", status: IntegrationStatus, statusReason: String? = nil, metaUserId: String,
        config: Settings, grantedScopes: [String], missingScopes: [String], connectedAt: Date, updatedAt: Date,
        lastRefresh: RefreshOutcome? = nil
    ) {
        self.tenantId = tenantId
        self.provider = provider
        self.status = status
        self.statusReason = statusReason
        self.metaUserId = metaUserId
        self.config = config
        self.grantedScopes = grantedScopes
        self.missingScopes = missingScopes
        self.connectedAt = connectedAt
        self.updatedAt = updatedAt
        self.lastRefresh = lastRefresh
    }
}

package struct PixelProblem: Codable, Sendable, Equatable {
    package var reason: String
    package var since: Date
}

package struct RefreshOutcome: Codable, Sendable, Equatable {
    /// `renewed`, `checked`, `failed` or `needs_reauth`.
    package var outcome: String
    package var at: Date
    package var detail: String?
}

/// A notice for Compass (`COMPASS_WEBHOOK_URL`), kept until Compass accepts it.
package struct CompassNotice: Codable, Sendable, Equatable {
    package var type: String
    package var tenant: String
    package var reason: String
    package var time: Date
    package var attempts: Int = 0
    /// The dataset (pixel) a notice about one is about.
    package var dataset: String? = nil
}

package struct IntegrationCredential: Codable, Sendable, Equatable {
    package var tenantId: String
    package var key: String = "access_token"
    package var token: SealedSecret
    package var expiresAt: Date?
    package var dataAccessExpiresAt: Date?
    package var scopes: [String]
    package var metaUserId: String
    package var updatedAt: Date
    /// When Meta last confirmed the token (debug_token) or renewed it.
    package var checkedAt: Date?
    /// `system_user` for a token that is never exchanged (see `Integration.tokenType`).
    package var tokenType: String?
    /// When the token's next check or renewal is due: the instant of its entry in the due index
    /// (`DueIndex`). An entry at any other instant is stale and is dropped when it comes due.
    package var dueAt: Date?

    /// Associated data for the token's encryption: bound to the tenant and the key name.
    package static func sealContext(tenantId: String) -> String { "compass/meta/access_token/\(tenantId)" }

    package init(
        tenantId: String, key: String = "access_token", token: SealedSecret, expiresAt: Date? = nil, dataAccessExpiresAt: Date? = nil,
        scopes: [String], metaUserId: String, updatedAt: Date, checkedAt: Date? = nil, dueAt: Date? = nil
    ) {
        self.tenantId = tenantId
        self.key = key
        self.token = token
        self.expiresAt = expiresAt
        self.dataAccessExpiresAt = dataAccessExpiresAt
        self.scopes = scopes
        self.metaUserId = metaUserId
        self.updatedAt = updatedAt
        self.checkedAt = checkedAt
        self.dueAt = dueAt
    }
}

package struct OAuthState: Codable, Sendable, Equatable {
    package static let lifetimeSeconds = 600

    package var tenantId: String
    /// Stored as Unix seconds.
    package var createdAt: Date
    /// Ask Meta again for permissions the tenant declined last time.
    package var rerequest: Bool

    package init(tenantId: String, createdAt: Date, rerequest: Bool) {
        self.tenantId = tenantId
        self.createdAt = createdAt
        self.rerequest = rerequest
    }

    private enum CodingKeys: String, CodingKey { case tenantId, createdAt, rerequest }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            tenantId: try container.decode(String.self, forKey: .tenantId),
            createdAt: Date(unixSeconds: try container.decode(Int64.self, forKey: .createdAt)),
            rerequest: try container.decode(Bool.self, forKey: .rerequest))
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(tenantId, forKey: .tenantId)
        try container.encode(createdAt.unixSeconds, forKey: .createdAt)
        try container.encode(rerequest, forKey: .rerequest)
    }
}

/// Keys of the store, all under `meta/`. Tenant ids and Meta ids are valid key segments by
/// their own validation; a nonce is stored only as its SHA-256, so the store never holds a
/// usable state value.
package enum RecordKey {
    package static func integration(_ tenant: String) -> String { "meta/integration/\(tenant)" }
    package static func credential(_ tenant: String) -> String { "meta/credential/\(tenant)" }
    package static func oauthState(nonce: String) -> String { "meta/oauth-state/\(Hex.encode(Crypto.sha256(nonce)))" }
    package static let integrationsPrefix = "meta/integration/"
    package static let credentialsPrefix = "meta/credential/"
    package static func refreshLease(_ tenant: String) -> String { "meta/lease/refresh/\(tenant)" }
    package static let noticesPrefix = "meta/notice/"
    /// Where the last cron run's sweep of expired records stopped.
    package static let sweepCursor = "meta/sweep/cursor"
    /// Where the walk over every credential (indexing those written before the due index,
    /// re-encryption after a key rotation) stopped when a run's time budget was spent.
    package static let refreshCursor = "meta/refresh/cursor"
    /// Present once every credential written before the due index has an entry in it.
    package static let dueIndexComplete = "meta/refresh/indexed"
    /// When the next cron run sweeps expired records (a Unix time in seconds).
    package static let sweepNext = "meta/sweep/next"
    /// Meta's Event Match Quality figures for the tenant's pixel, as fetched before datasets
    /// had their own (`datasetQuality` since).
    package static func quality(_ tenant: String) -> String { "meta/quality/\(tenant)" }
    /// Meta's quality figures for one of the tenant's datasets, as last fetched.
    package static func datasetQuality(_ tenant: String, _ dataset: String) -> String { "meta/dataset-quality/\(tenant)/\(dataset)" }
    package static func datasetQualityPrefix(_ tenant: String) -> String { "meta/dataset-quality/\(tenant)/" }
    /// Present once every tenant with queued events from before the outbox index has an entry.
    package static let outboxIndexComplete = "meta/refresh/outbox-indexed"
    package static func notice(_ tenant: String, _ id: String) -> String { "meta/notice/\(tenant)/\(id)" }
    /// Held by the one run delivering notices to Compass.
    package static let noticesLease = "meta/lease/notices"
    package static func deletion(_ code: String) -> String { "meta/deletion/\(code)" }
    /// A Meta `signed_request` already acted on (by its SHA-256), kept while it could be replayed.
    package static func signedRequest(_ digest: String) -> String { "meta/signed-request/\(digest)" }

    /// Everything stored of one tenant, but for the index entry of its Meta user (which needs
    /// the user's id), OAuth states (keyed by the state's hash; they expire within 10 minutes)
    /// and notices to Compass (about this very tenant, kept until Compass has them).
    package static func tenantRecords(_ tenant: String) -> [String] {
        [
            credential(tenant), integration(tenant), deliveryStats(tenant), refreshLease(tenant), drainLease(tenant), outboxLock(tenant),
            quality(tenant),
        ]
    }

    package static func tenantPrefixes(_ tenant: String) -> [String] {
        [outboxPrefix(tenant), deadPrefix(tenant), sentPrefix(tenant), datasetQualityPrefix(tenant)]
    }
}

/// Typed access to records: decoding failures become `.corrupt`, never a crash.
package struct RecordStore: Sendable {
    package let store: any KeyValueStore

    package func load<T: Decodable>(_ type: T.Type, at key: String) throws(StoreError) -> (T, UInt64)? {
        try load(at: key) { try JSON.decode(type, from: $0) }
    }

    private func load<T>(at key: String, _ decode: ([UInt8]) throws -> T) throws(StoreError) -> (T, UInt64)? {
        guard let found = try store.get(key) else { return nil }
        do {
            return (try decode(found.value), found.version)
        } catch {
            throw .corrupt(key)
        }
    }

    /// As `load`, but a record that cannot be decoded counts as absent: for callers about to
    /// overwrite or delete it, where a corrupt record must not block the repair.
    package func loadUnlessCorrupt<T: Decodable>(_ type: T.Type, at key: String) throws(StoreError) -> (T, UInt64)? {
        try Self.absentIfCorrupt { () throws(StoreError) in try load(type, at: key) }
    }

    private static func absentIfCorrupt<T>(_ load: () throws(StoreError) -> T?) throws(StoreError) -> T? {
        do {
            return try load()
        } catch .corrupt {
            return nil
        }
    }

    @discardableResult
    package func save(_ value: some Encodable, at key: String, ttl: Int? = nil) throws(StoreError) -> UInt64 {
        try store.put(key, JSON.encode(value), ttl: ttl)
    }

    @discardableResult
    package func create(_ value: some Encodable, at key: String, ttl: Int? = nil) throws(StoreError) -> UInt64 {
        try store.create(key, JSON.encode(value), ttl: ttl)
    }

    @discardableResult
    package func replace(_ value: some Encodable, at key: String, version: UInt64) throws(StoreError) -> UInt64 {
        try store.compareAndSwap(key, JSON.encode(value), expected: version, ttl: nil)
    }

    /// Where a job that walks the store page by page (the sweep, the token walk) stopped last:
    /// a key, or nil when none was kept or what was kept is not a key.
    package func cursor(at key: String) throws(StoreError) -> String? {
        guard let found = try store.get(key) else { return nil }
        let saved = String(decoding: found.value, as: UTF8.self)
        return StoreKey.isValidKey(saved) ? saved : nil
    }

    /// Keeps where the job stopped for its next run; nil (it reached the end) forgets it.
    package func setCursor(_ cursor: String?, at key: String) throws(StoreError) {
        if let cursor { try store.put(key, Array(cursor.utf8)) } else { try store.delete(key) }
    }

    package init(store: any KeyValueStore) {
        self.store = store
    }
}
