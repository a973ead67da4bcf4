import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// Tokens that run out within 7 days, from an index of expiry kept wherever a credential is
/// written or deleted.
@Suite struct TokensExpiringSoonTests {
    static func soon(_ world: World) throws -> Double? {
        try MetricsHandler(dependencies: world.dependencies).values()[MetricSeries(MetricCatalog.tokensExpiringSoon)]
    }

    @Test func aTokenNearItsEndCountsUntilRenewedOrGone() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        #expect(try Self.soon(world) == 0)
        let credential = try #require(
            try RecordStore(store: world.store).load(IntegrationCredential.self, at: RecordKey.credential("tenant_a"))?.0)
        let expires = try #require(credential.expiresAt)
        world.clock.advance(expires.timeIntervalSince(world.clock.now) - 6 * 86_400)
        #expect(try Self.soon(world) == 1)
        // refresh-cron renews it: 60 days again.
        #expect(world.drain().tokens.renewed == 1)
        #expect(try Self.soon(world) == 0)
        #expect(try world.store.count(prefix: TokenExpiry.prefix) == 1)
        #expect(world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect")).status == 200)
        #expect(try world.store.count(prefix: TokenExpiry.prefix) == 0)
        #expect(try world.store.get(TokenExpiry.pointer("tenant_a")) == nil)
    }
}
