/// The records of DESIGN section 5 and where they live in the key-value store.
enum IntegrationStatus: String, Codable, Sendable {
    case connected
    case needsReauth = "needs_reauth"
    case disconnected
}

struct AdAccount: Codable, Sendable, Equatable {
    struct Business: Codable, Sendable, Equatable {
        var id: String
        var name: String?
    }
    /// `act_<digits>`.
    var id: String
    var accountId: String?
    var name: String?
    var currency: String?
    /// Meta's `account_status`: 1 active, 2 disabled, 3 unsettled, 7 risk review, 9 grace period,
    /// 100 pending closure, 101 closed.
    var status: Int?
    var business: Business?
}

struct Integration: Codable, Sendable, Equatable {
    struct Settings: Codable, Sendable, Equatable {
        var adAccounts: [AdAccount] = []
        var adAccountId: String?
        var pixelId: String?
        var testEventCode: String?
    }

    var tenantId: String
    var provider = "meta"
    var status: IntegrationStatus
    var statusReason: String?
    /// The app-scoped id of the Meta user who granted the token; Meta's callbacks name it.
    var metaUserId: String
    var config: Settings
    var grantedScopes: [String]
    var missingScopes: [String]
    var connectedAt: Date
    var updatedAt: Date
    /// The last token renewal or check by refresh-cron.
    var lastRefresh: RefreshOutcome?
}

struct RefreshOutcome: Codable, Sendable, Equatable {
    /// `renewed`, `checked`, `failed` or `needs_reauth`.
    var outcome: String
    var at: Date
    var detail: String?
}

/// A notice for Compass (`COMPASS_WEBHOOK_URL`), kept until Compass accepts it.
struct CompassNotice: Codable, Sendable, Equatable {
    var type: String
    var tenant: String
    var reason: String
    var time: Date
    var attempts: Int = 0
}

struct IntegrationCredential: Codable, Sendable, Equatable {
    var tenantId: String
    var key = "access_token"
    var token: SealedSecret
    var expiresAt: Date?
    var dataAccessExpiresAt: Date?
    var scopes: [String]
    var metaUserId: String
    var updatedAt: Date
    /// When Meta last confirmed the token (debug_token) or renewed it.
    var checkedAt: Date?

    /// Associated data for the token's encryption: bound to the tenant and the key name.
    static func sealContext(tenantId: String) -> String { "compass/meta/access_token/\(tenantId)" }
}

struct OAuthState: Sendable, Equatable, JSONValueConvertible {
    static let lifetimeSeconds = 600

    var tenantId: String
    var createdAt: Date
    /// Ask Meta again for permissions the tenant declined last time.
    var rerequest: Bool

    init(tenantId: String, createdAt: Date, rerequest: Bool) {
        self.tenantId = tenantId
        self.createdAt = createdAt
        self.rerequest = rerequest
    }

    var jsonValue: JSONValue {
        .object(["tenantId": .string(tenantId), "createdAt": .int(createdAt.unixSeconds), "rerequest": .bool(rerequest)])
    }

    init?(jsonValue: JSONValue) {
        guard let tenant = jsonValue["tenantId"]?.string, let created = jsonValue["createdAt"]?.integer,
              let rerequest = jsonValue["rerequest"]?.bool else { return nil }
        self.init(tenantId: tenant, createdAt: Date(unixSeconds: created), rerequest: rerequest)
    }
}

/// A record written as JSON without an encoder: for the records on the paths where a process's
/// start-up cost matters most (connect), where `JSONEncoder`'s first use is measurable.
protocol JSONValueConvertible {
    var jsonValue: JSONValue { get }
    init?(jsonValue: JSONValue)
}

/// Keys of the store, all under `meta/`. Tenant ids and Meta ids are valid key segments by
/// their own validation; a nonce is stored only as its SHA-256, so the store never holds a
/// usable state value.
enum RecordKey {
    static func integration(_ tenant: String) -> String { "meta/integration/\(tenant)" }
    static func credential(_ tenant: String) -> String { "meta/credential/\(tenant)" }
    static func oauthState(nonce: String) -> String { "meta/oauth-state/\(Hex.encode(Crypto.sha256(nonce)))" }
    static let integrationsPrefix = "meta/integration/"
    static func refreshLease(_ tenant: String) -> String { "meta/lease/refresh/\(tenant)" }
    static let noticesPrefix = "meta/notice/"
    static func notice(_ tenant: String, _ id: String) -> String { "meta/notice/\(tenant)/\(id)" }
    static func deletion(_ code: String) -> String { "meta/deletion/\(code)" }
    /// Tenants connected through one Meta user: `meta/meta-user/<user>/<tenant>`.
    static func metaUserPrefix(_ user: String) -> String { "meta/meta-user/\(user)/" }
    static func metaUserTenant(_ user: String, _ tenant: String) -> String { metaUserPrefix(user) + tenant }
}

/// Typed access to records: decoding failures become `.corrupt`, never a crash.
struct RecordStore: Sendable {
    let store: any KeyValueStore

    func load<T: Decodable>(_ type: T.Type, at key: String) throws(StoreError) -> (T, UInt64)? {
        guard let found = try store.get(key) else { return nil }
        do {
            return (try JSON.decode(type, from: found.value), found.version)
        } catch {
            throw .corrupt(key)
        }
    }

    func load<T: JSONValueConvertible>(_ type: T.Type, at key: String) throws(StoreError) -> (T, UInt64)? {
        guard let found = try store.get(key) else { return nil }
        guard let json = try? JSONParser.parse(found.value), let value = T(jsonValue: json) else { throw .corrupt(key) }
        return (value, found.version)
    }

    @discardableResult
    func create<T: JSONValueConvertible>(_ value: T, at key: String, ttl: Int? = nil) throws(StoreError) -> UInt64 {
        try store.create(key, value.jsonValue.serialized, ttl: ttl)
    }

    /// As `load`, but a record that cannot be decoded counts as absent: for callers about to
    /// overwrite or delete it, where a corrupt record must not block the repair.
    func loadUnlessCorrupt<T: Decodable>(_ type: T.Type, at key: String) throws(StoreError) -> (T, UInt64)? {
        do {
            return try load(type, at: key)
        } catch .corrupt {
            return nil
        }
    }

    @discardableResult
    func save(_ value: some Encodable, at key: String, ttl: Int? = nil) throws(StoreError) -> UInt64 {
        try store.put(key, JSON.encode(value), ttl: ttl)
    }

    @discardableResult
    func create(_ value: some Encodable, at key: String, ttl: Int? = nil) throws(StoreError) -> UInt64 {
        try store.create(key, JSON.encode(value), ttl: ttl)
    }

    @discardableResult
    func replace(_ value: some Encodable, at key: String, version: UInt64) throws(StoreError) -> UInt64 {
        try store.compareAndSwap(key, JSON.encode(value), expected: version, ttl: nil)
    }
}
