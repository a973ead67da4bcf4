import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// The integrations gauge, kept by the work that changes a status, after one walk that counts
/// the integrations from before it.
@Suite struct IntegrationsGaugeTests {
    /// The gauge's series that are not zero, by status.
    static func gauge(_ world: World) throws -> [String: Double] {
        let values = try MetricsHandler(dependencies: world.dependencies).values()
        var byStatus: [String: Double] = [:]
        for (series, value) in values where series.name == MetricCatalog.integrations && value != 0 {
            byStatus[series.labels["status"]!] = value
        }
        return byStatus
    }

    @Test func connectReauthAndDisconnectMoveTheGauge() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        // An integration from before the gauge: only the one-time walk can count it.
        try world.store.put(
            RecordKey.integration("tenant_old"),
            JSON.encode(
                Integration(
                    tenantId: "tenant_old", status: .needsReauth, statusReason: "token_invalid", metaUserId: "9",
                    config: .init(adAccounts: []),
                    grantedScopes: [], missingScopes: [], connectedAt: world.clock.now, updatedAt: world.clock.now)))
        world.readyTenant()
        #expect(try Self.gauge(world)["connected"] == 1)
        _ = world.drain()
        #expect(try Self.gauge(world) == ["connected": 1, "needs_reauth": 1])
        _ = world.drain()  // the walk is once
        #expect(try Self.gauge(world)["needs_reauth"] == 1)
        // Meta refuses tenant_a's token at its daily check.
        world.clock.advance(2 * 86_400)
        world.queueFault(.tokenInvalid, path: "debug_token")
        #expect(world.drain().tokens.needsReauth == 1)
        #expect(try Self.gauge(world) == ["needs_reauth": 2])
        // Connected again, then disconnected: gone from the gauge.
        world.connectTenant()
        #expect(try Self.gauge(world) == ["connected": 1, "needs_reauth": 1])
        let disconnected = world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect"))
        #expect(disconnected.status == 200, "\(disconnected.body)")
        #expect(try Self.gauge(world) == ["needs_reauth": 1])
    }
}
