import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// Tokens that run out within 7 days, from an index of expiry kept wherever a credential is
/// written or deleted; each entry stands while its tenant's credential runs out in its hour.
@Suite struct TokensExpiringSoonTests {
    static func soon(_ world: World) throws -> Double? {
        try MetricsHandler(dependencies: world.dependencies).values()[MetricSeries(MetricCatalog.tokensExpiringSoon)]
    }

    /// The clock moved to six days before tenant_a's token runs out.
    static func advanceToSixDaysBeforeExpiry(_ world: World) throws {
        let credential = try #require(
            try RecordStore(store: world.store).load(IntegrationCredential.self, at: RecordKey.credential("tenant_a"))?.0)
        let expires = try #require(credential.expiresAt)
        world.clock.advance(expires.timeIntervalSince(world.clock.now) - 6 * 86_400)
    }

    /// Three connected tenants as before the index: no entries, the walk not made.
    static func threeTenantsFromBeforeTheIndex() throws -> World {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        for tenant in ["tenant_a", "tenant_b", "tenant_c"] { world.connectTenant(tenant) }
        _ = try world.store.deleteAll(prefix: TokenExpiry.prefix)
        _ = try world.store.delete(MetricsLedger.integrationsCountedKey, ifVersion: nil)
        return world
    }

    @Test func aTokenNearItsEndCountsUntilRenewedOrGone() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        #expect(try Self.soon(world) == 0)
        try Self.advanceToSixDaysBeforeExpiry(world)
        #expect(try Self.soon(world) == 1)
        // refresh-cron renews it: 60 days again.
        #expect(world.drain().tokens.renewed == 1)
        #expect(try Self.soon(world) == 0)
        #expect(try world.store.count(prefix: TokenExpiry.prefix) == 1)
        #expect(world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect")).status == 200)
        #expect(try world.store.count(prefix: TokenExpiry.prefix) == 0)
    }

    /// A tenant's record is its credential and its one entry: no pointer of its own. A store
    /// written before kept one per tenant; it goes when the token moves to another hour (a
    /// renewal) or goes (a deauthorization, a purge), and until then nothing reads it.
    @Test func theCredentialNamesItsEntryAndEarlierPointersGo() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        for tenant in ["tenant_a", "tenant_b"] { world.connectTenant(tenant) }
        #expect(try world.store.count(prefix: TokenExpiry.prefix) == 2)
        #expect(try world.store.count(prefix: "meta/token-expiry-of/") == 0)
        for tenant in ["tenant_a", "tenant_b"] {
            _ = try world.store.put(TokenExpiry.earlierPointer(tenant), Array("12345".utf8), ttl: nil)
        }
        try Self.advanceToSixDaysBeforeExpiry(world)
        #expect(try Self.soon(world) == 2)
        // Both renewed: each entry moved to the new token's hour, each pointer gone.
        #expect(world.drain().tokens.renewed == 2)
        #expect(try Self.soon(world) == 0)
        #expect(try world.store.count(prefix: TokenExpiry.prefix) == 2)
        #expect(try world.store.count(prefix: "meta/token-expiry-of/") == 0)
        // Their Meta user deauthorized: each entry goes with its credential, and the pointer.
        _ = try world.store.put(TokenExpiry.earlierPointer("tenant_b"), Array("12345".utf8), ttl: nil)
        let integration = try RecordStore(store: world.store).load(Integration.self, at: RecordKey.integration("tenant_b"))
        let user = try #require(integration?.0.metaUserId)
        #expect(try IntegrationLifecycle(dependencies: world.dependencies).deauthorize(metaUserId: user) == 2)
        #expect(try world.store.count(prefix: TokenExpiry.prefix) == 0)
        #expect(try world.store.get(TokenExpiry.earlierPointer("tenant_b")) == nil)
    }

    /// Credentials written before the index get their entries from refresh-cron's one-time walk,
    /// in one batch; an entry of an hour the tenant's credential does not run out in (a writer
    /// that died between the two) is passed over.
    @Test func credentialsFromBeforeTheIndexAreIndexedOnce() throws {
        let world = try Self.threeTenantsFromBeforeTheIndex()
        // tenant_c has an entry of a minute its token does not run out at, a week before now.
        let stale = world.clock.now.addingTimeInterval(-7 * 86_400)
        _ = try world.store.put(DueIndex.key("tenant_c", at: TokenExpiry.bucket(stale), prefix: TokenExpiry.prefix), [], ttl: nil)
        _ = world.drain()
        #expect(try world.store.count(prefix: TokenExpiry.prefix) == 4)
        for tenant in ["tenant_a", "tenant_b", "tenant_c"] {
            let credential = try #require(
                try RecordStore(store: world.store).load(IntegrationCredential.self, at: RecordKey.credential(tenant))?.0)
            let key = DueIndex.key(tenant, at: TokenExpiry.bucket(try #require(credential.expiresAt)), prefix: TokenExpiry.prefix)
            #expect(try world.store.get(key) != nil)
        }
        #expect(try Self.soon(world) == 0)
        // Counted once: the three run out within a week of that day.
        try Self.advanceToSixDaysBeforeExpiry(world)
        #expect(try Self.soon(world) == 3)
    }

    /// The walk goes a few pages a run and the next run goes on where it stopped, so a large
    /// store is walked over several runs instead of past one's budget.
    @Test func theOneTimeWalkIsResumedRunAfterRun() throws {
        let world = try Self.threeTenantsFromBeforeTheIndex()
        let cron = RefreshCronHandler(dependencies: world.dependencies)
        var runs = 0
        while try world.store.get(MetricsLedger.integrationsCountedKey) == nil, runs < 20 {
            try cron.countIntegrationsOnce(pages: 1, pageSize: 1)
            runs += 1
            if runs == 1 { #expect(try world.store.get(MetricsLedger.integrationsWalkKey) != nil) }
        }
        // A page of one record a run: three integrations, then three credentials.
        #expect(runs >= 6 && runs < 20, "\(runs)")
        #expect(try world.store.count(prefix: TokenExpiry.prefix) == 3)
        #expect(try world.store.get(MetricsLedger.integrationsWalkKey) == nil)
    }
}
