import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct DisconnectTests {
    func disconnect(_ world: World, tenant: String = "tenant_a") -> CGIResponse {
        world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect", tenant: tenant))
    }

    func storedToken(_ world: World, _ tenant: String = "tenant_a") throws -> String {
        try CredentialCipher(keys: world.config.platform.credentialKeys!, random: SecureRandom())
            .open(try #require(world.credential(tenant)).token, context: IntegrationCredential.sealContext(tenantId: tenant))
    }

    func isValidAtMeta(_ world: World, _ token: String) throws -> Bool {
        let graph = GraphClient(
            settings: world.config.meta, app: try world.config.meta.app(), transport: world.transport, logger: world.logs.logger())
        return try graph.debugToken(token).isValid
    }

    @Test func revokesAtMetaThenDeletesBothRecords() throws {
        let world = World()
        world.connectTenant()
        let token = try storedToken(world)
        #expect(try isValidAtMeta(world, token))
        let response = disconnect(world)
        #expect(response.status == 200)
        #expect(response.text == #"{"disconnected":true,"revokedAtMeta":true}"#)
        #expect(world.integration() == nil && world.credential() == nil)
        #expect(try !isValidAtMeta(world, token))
        #expect(world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings")).status == 404)
    }

    @Test func deletesEvenWhenMetaIsDownAndSaysSo() throws {
        let world = World()
        world.connectTenant()
        world.queueFault(.serverError, path: "me/permissions")
        let response = disconnect(world)
        #expect(response.status == 200)
        #expect(response.text == #"{"disconnected":true,"revokeSkipped":"meta_unreachable","revokedAtMeta":false}"#)
        #expect(world.integration() == nil && world.credential() == nil)
    }

    @Test func aSecondDisconnectIsHarmless() {
        let world = World()
        world.connectTenant()
        #expect(disconnect(world).status == 200)
        let again = disconnect(world)
        #expect(again.status == 200)
        #expect(again.text == #"{"disconnected":true,"revokeSkipped":"not_connected","revokedAtMeta":false}"#)
    }

    @Test func aGrantSharedWithAnotherTenantIsNotRevoked() throws {
        let world = World()
        world.connectTenant("tenant_a")
        world.connectTenant("tenant_b")
        let tokenB = try storedToken(world, "tenant_b")
        let response = disconnect(world, tenant: "tenant_a")
        #expect(response.text == #"{"disconnected":true,"revokeSkipped":"grant_shared_with_another_tenant","revokedAtMeta":false}"#)
        #expect(try isValidAtMeta(world, tokenB))
        #expect(world.integration("tenant_b")?.status == .connected)
        // The last tenant of that Meta user does revoke.
        #expect(disconnect(world, tenant: "tenant_b").text == #"{"disconnected":true,"revokedAtMeta":true}"#)
    }

    @Test func aTokenMetaAlreadyRejectsCountsAsRevoked() {
        let world = World()
        world.connectTenant()
        world.queueFault(.tokenExpired, path: "me/permissions")
        #expect(disconnect(world).text == #"{"disconnected":true,"revokedAtMeta":true}"#)
    }

    @Test func aCrossSiteCookieRequestIsRefused() {
        let world = World()
        world.connectTenant()
        let forged = world.request("POST", "/api/connect/meta/disconnect", cookie: true, headers: ["origin": "https://evil.example"])
        #expect(world.run(DisconnectHandler.self, forged).status == 403)
        let fetchSite = world.request("POST", "/api/connect/meta/disconnect", cookie: true, headers: ["sec-fetch-site": "cross-site"])
        #expect(world.run(DisconnectHandler.self, fetchSite).status == 403)
        #expect(world.integration() != nil)
        let sameSite = world.request("POST", "/api/connect/meta/disconnect", cookie: true, headers: ["origin": World.base])
        #expect(world.run(DisconnectHandler.self, sameSite).status == 200)
    }
}
