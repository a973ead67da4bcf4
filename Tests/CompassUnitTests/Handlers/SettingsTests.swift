import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct SettingsTests {
    func get(_ world: World, _ target: String = "/api/connect/meta/settings", tenant: String = "tenant_a") -> CGIResponse {
        world.run(SettingsHandler.self, world.request("GET", target, tenant: tenant))
    }

    func put(_ world: World, _ body: String) -> CGIResponse {
        world.run(SettingsHandler.self, world.request("PUT", "/api/connect/meta/settings", body: body))
    }

    @Test func notConnectedIs404() {
        let world = World()
        let response = get(world)
        #expect(response.status == 404)
        #expect(response.errorCode == "not_connected")
    }

    @Test func showsTheConnectionButNeverTheToken() throws {
        let world = World()
        world.connectTenant()
        let response = get(world)
        #expect(response.status == 200)
        let json = response.json
        #expect(json["status"] as? String == "connected")
        #expect((json["adAccounts"] as? [[String: Any]])?.count == 5)
        #expect(json["tokenExpiresAt"] is String)
        #expect(json["dataAccessExpiresAt"] is String)
        #expect(json["grantedScopes"] as? [String] == ["ads_read", "business_management"])
        #expect(json["pixels"] == nil)
        let token = try CredentialCipher(keys: world.config.platform.credentialKeys!, random: SecureRandom())
            .open(try #require(world.credential()).token, context: IntegrationCredential.sealContext(tenantId: "tenant_a"))
        #expect(!response.text.contains(token))
        #expect(!response.text.contains("ciphertext"))
    }

    @Test func listsTheChosenAccountsPixelsFromMeta() {
        let world = World()
        world.connectTenant()
        let response = get(world, "/api/connect/meta/settings?adAccountId=act_1000002")
        #expect(response.status == 200)
        let pixels = response.json["pixels"] as? [[String: Any]] ?? []
        #expect(pixels.prefix(2).map { $0["id"] as? String } == ["2000201", "2000202"])
        #expect(pixels.prefix(2).allSatisfy { $0["source"] as? String == "ad_account" })
        #expect(pixels.first?["name"] as? String == "Sandbox Ads 2 Pixel 1")
        #expect(pixels.first?["lastFiredTime"] as? String == "2026-11-20T10:00:00+0000")
        // The business's own pixels follow, once each, including one attached to no account.
        let business = pixels.dropFirst(2)
        #expect(business.allSatisfy { ["business", "shared"].contains($0["source"] as? String) })
        #expect(business.filter { $0["source"] as? String == "business" }.contains { $0["id"] as? String == SandboxData.businessOnlyPixel })
        // Then the pixels other businesses share with it.
        #expect(pixels.last?["id"] as? String == SandboxData.sharedPixel && pixels.last?["source"] as? String == "shared")
        #expect(Set(pixels.compactMap { $0["id"] as? String }).count == pixels.count)
    }

    /// A pixel another business shares with the tenant's business can be chosen and receives events.
    @Test func acceptsAPixelSharedWithTheBusiness() {
        let world = World()
        world.connectTenant()
        #expect(put(world, #"{"adAccountId":"act_1000001","pixelId":"\#(SandboxData.sharedPixel)"}"#).status == 200)
        #expect(world.send(world.lead("to-shared-pixel")).status == 200)
        #expect(world.deliveredIds(pixel: SandboxData.sharedPixel) == ["to-shared-pixel"])
    }

    @Test func refusesAccountsThatAreNotTheTenants() {
        let world = World()
        world.connectTenant()
        #expect(get(world, "/api/connect/meta/settings?adAccountId=act_999").status == 422)
        #expect(get(world, "/api/connect/meta/settings?adAccountId=../etc").status == 400)
        #expect(get(world, "/api/connect/meta/settings?adAccountId=act_1000001&adAccountId=act_1000002").status == 400)
    }

    @Test func savesAnAccountAndAPixelThatBelongsToIt() throws {
        let world = World()
        world.connectTenant()
        let response = put(world, #"{"adAccountId":"act_1000003","pixelId":"2000302","testEventCode":"TEST42"}"#)
        #expect(response.status == 200)
        #expect(response.json["adAccountId"] as? String == "act_1000003")
        #expect(response.json["pixelId"] as? String == "2000302")
        #expect(response.json["testEventCode"] as? String == "TEST42")
        #expect(world.integration()?.config.pixelId == "2000302")

        let cleared = put(world, #"{"testEventCode":null}"#)
        #expect(cleared.status == 200)
        #expect(world.integration()?.config.testEventCode == nil)
        #expect(world.integration()?.config.pixelId == "2000302")
    }

    @Test func refusesAPixelNeitherTheAccountNorItsBusinessHas() {
        let world = World()
        world.connectTenant()
        let response = put(world, #"{"adAccountId":"act_1000001","pixelId":"9999999"}"#)
        #expect(response.status == 422)
        #expect(response.errorCode == "unknown_pixel")
        #expect(world.integration()?.config.adAccountId == nil)
    }

    @Test func acceptsAPixelTheBusinessOwnsButNoAccountHas() {
        let world = World()
        world.connectTenant()
        let response = put(world, #"{"adAccountId":"act_1000001","pixelId":"\#(SandboxData.businessOnlyPixel)"}"#)
        #expect(response.status == 200)
        #expect(world.integration()?.config.pixelId == SandboxData.businessOnlyPixel)
        #expect(world.send(world.lead("to-business-pixel")).status == 200)
        #expect(world.deliveredIds(pixel: SandboxData.businessOnlyPixel) == ["to-business-pixel"])
    }

    @Test func withoutBusinessManagementOnlyTheAccountsPixelsAreOffered() {
        let world = World()
        world.connectTenant(decline: "business_management")
        let pixels = get(world, "/api/connect/meta/settings?adAccountId=act_1000001").json["pixels"] as? [[String: Any]]
        #expect(pixels?.map { $0["id"] as? String } == ["2000101", "2000102"])
    }

    @Test(arguments: [
        (#"{"adAccountId":"#, 400, "invalid_json"), ("[]", 400, "invalid_json"), ("", 400, "invalid_json"),
        (#"{"pixel":"1"}"#, 400, "unknown_field"), (#"{"adAccountId":"act_x"}"#, 400, "invalid_ad_account_id"),
        (#"{"adAccountId":5}"#, 400, "invalid_json"), (#"{"adAccountId":"act_42"}"#, 422, "unknown_ad_account"),
        (#"{"pixelId":"2000101"}"#, 422, "ad_account_required"), (#"{"testEventCode":"has space"}"#, 400, "invalid_test_event_code"),
    ])
    func rejectsBadUpdates(body: String, status: Int, code: String) {
        let world = World()
        world.connectTenant()
        let response = put(world, body)
        #expect(response.status == status)
        #expect(response.errorCode == code)
    }

    @Test func aTokenMetaNoLongerAcceptsIsReported() {
        let world = World()
        world.connectTenant()
        world.queueFault(.tokenExpired, path: "act_1000001/adspixels")
        let response = get(world, "/api/connect/meta/settings?adAccountId=act_1000001")
        #expect(response.status == 409)
        #expect(response.errorCode == "meta_token_invalid")
    }

    @Test func aTenantSeesOnlyItsOwnIntegration() {
        let world = World()
        world.connectTenant("tenant_a")
        #expect(get(world, tenant: "tenant_b").status == 404)
    }
}
