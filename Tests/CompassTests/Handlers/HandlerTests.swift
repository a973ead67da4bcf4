import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage

@Suite struct ConnectTests {
    @Test func redirectsToTheDialogWithAFreshStateBoundToTheTenant() throws {
        let world = World()
        let response = world.run(ConnectHandler.self, world.request("GET", "/api/connect/meta", cookie: true))
        #expect(response.status == 302)
        let location = try #require(response.header("Location"))
        #expect(location.hasPrefix("\(World.graphBase)/\(Config.defaultAPIVersion)/dialog/oauth?"))
        let query = QueryParameters(parsing: location.split(separator: "?")[1])
        #expect(query.single("client_id") == World.appId)
        #expect(query.single("redirect_uri") == "\(World.base)/api/connect/meta/callback")
        #expect(query.single("scope") == "ads_read,business_management")
        #expect(query.single("response_type") == "code")
        #expect(query.single("auth_type") == nil)
        let state = try #require(query.single("state"))
        #expect(Base64URL.decode(state)?.count == 32)
        let stored = try #require(try RecordStore(store: world.store).load(OAuthState.self, at: RecordKey.oauthState(nonce: state)))
        #expect(stored.0.tenantId == "tenant_a")
        // Only the state's hash names the record.
        #expect(
            try world.store.list(prefix: "meta/oauth-state/", after: nil, limit: 10).entries.map(\.key)
                == [RecordKey.oauthState(nonce: state)])
        #expect(!RecordKey.oauthState(nonce: state).contains(state))
    }

    @Test func everyConnectGetsItsOwnState() throws {
        let world = World()
        let states = (0..<20).map { _ in
            world.run(ConnectHandler.self, world.request("GET", "/api/connect/meta")).header("Location") ?? "no location"
        }
        #expect(Set(states).count == 20)
    }

    @Test func refusesRequestsWithoutAValidSession() {
        let world = World()
        for request in [
            world.request("GET", "/api/connect/meta", tenant: nil),
            world.request("GET", "/api/connect/meta", tenant: nil, headers: ["authorization": "Bearer abc.def.ghi"]),
            world.request("GET", "/api/connect/meta", tenant: nil, headers: ["cookie": "compass_session="]),
        ] {
            let response = world.run(ConnectHandler.self, request)
            #expect(response.status == 401)
            #expect(response.errorCode == "unauthorized")
            #expect(response.header("WWW-Authenticate") == "Bearer")
        }
    }

    @Test func asksAgainForDeclinedPermissions() throws {
        let world = World()
        #expect(world.connectTenant(decline: "business_management") == "\(World.base)/settings/integrations?connected=meta")
        #expect(world.integration()?.missingScopes == ["business_management"])
        let location = try #require(world.run(ConnectHandler.self, world.request("GET", "/api/connect/meta")).header("Location"))
        #expect(location.contains("auth_type=rerequest"))
    }

    @Test func wrongMethodIs405WithAllow() {
        let world = World()
        let response = world.run(ConnectHandler.self, world.request("POST", "/api/connect/meta"))
        #expect(response.status == 405)
        #expect(response.header("Allow") == "GET")
    }

    @Test func aMissingAppIdIsMisconfiguredAndNamed() {
        let world = World()
        world.config.metaAppID = nil
        let response = world.run(ConnectHandler.self, world.request("GET", "/api/connect/meta"))
        #expect(response.status == 500)
        #expect(response.errorCode == "misconfigured")
        #expect(response.text.contains("META_APP_ID"))
    }
}

@Suite struct CallbackTests {
    let settingsURL = "\(World.base)/settings/integrations"

    func dialogState(_ world: World, tenant: String = "tenant_a") -> String {
        let location = world.run(ConnectHandler.self, world.request("GET", "/api/connect/meta", tenant: tenant)).header("Location")
        guard let query = location?.split(separator: "?").dropFirst().first, let state = QueryParameters(parsing: query).single("state")
        else {
            Issue.record("connect gave no dialog URL with a state: \(location ?? "none")")
            return "missing-state"
        }
        return state
    }

    /// Approves in the sandbox dialog and returns the callback query Meta would send.
    func approve(_ world: World, state: String) -> String {
        let redirect = "\(World.base)/api/connect/meta/callback"
        var query = QueryParameters()
        query.append("client_id", World.appId)
        query.append("redirect_uri", redirect)
        query.append("state", state)
        query.append("scope", "ads_read,business_management")
        query.append("sandbox_action", "approve")
        guard
            let answer = try? world.transport.send(
                HTTPRequest(method: "GET", url: "\(World.graphBase)/v26.0/dialog/oauth?\(query.encoded)")),
            let back = answer.headers["location"]?.split(separator: "?", maxSplits: 1).dropFirst().first
        else {
            Issue.record("the sandbox dialog did not redirect back")
            return ""
        }
        return String(back)
    }

    func callback(_ world: World, _ query: String, tenant: String? = "tenant_a") -> CGIResponse {
        world.run(CallbackHandler.self, world.request("GET", "/api/connect/meta/callback?\(query)", tenant: tenant, cookie: true))
    }

    @Test func connectsAndStoresEverythingEncrypted() throws {
        let world = World()
        let response = callback(world, approve(world, state: dialogState(world)))
        #expect(response.status == 302)
        #expect(response.header("Location") == "\(settingsURL)?connected=meta")

        let integration = try #require(world.integration())
        #expect(integration.status == .connected)
        #expect(integration.metaUserId == SandboxData.defaultUserId)
        #expect(integration.config.adAccounts.map(\.id) == SandboxData.accounts.map(\.id))
        #expect(integration.config.adAccounts[0].business?.id == SandboxData.businessId)
        #expect(integration.config.adAccounts[2].status == 2)
        #expect(integration.grantedScopes == ["ads_read", "business_management"])
        #expect(integration.missingScopes.isEmpty)

        let credential = try #require(world.credential())
        let expiry = try #require(credential.expiresAt)
        #expect(abs(expiry.timeIntervalSince(world.clock.now) - 5_184_000) < 5)
        let token = try CredentialCipher(keys: world.config.credentialKeys!, random: SecureRandom())
            .open(credential.token, context: IntegrationCredential.sealContext(tenantId: "tenant_a"))
        #expect(token.hasPrefix("EAAS"))
        // The token appears nowhere in the store's files nor in the logs.
        let files = try #require(FileManager.default.enumerator(atPath: world.folder.path + "/store")).compactMap { $0 as? String }
        for file in files where file.hasSuffix(".rec") {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: world.folder.path + "/store/" + file))
            #expect(!Array(bytes).contains(Array(token.utf8)))
        }
        #expect(!world.logs.text.contains(token))
        #expect(!world.logs.text.contains(World.appSecret))
        // Three pages of ad accounts, each call with its appsecret_proof (the sandbox demands it).
        #expect(world.transport.paths.filter { $0.hasSuffix("me/adaccounts") }.count == 3)
    }

    @Test func denialWithOrWithoutStateIsMetaDenied() throws {
        let world = World()
        let state = dialogState(world)
        #expect(
            callback(world, "error=access_denied&error_reason=user_denied&state=\(state)").header("Location")
                == "\(settingsURL)?error=meta_denied")
        #expect(callback(world, "error=access_denied&error_reason=user_denied").header("Location") == "\(settingsURL)?error=meta_denied")
        // The denied state was consumed.
        #expect(try world.store.list(prefix: "meta/oauth-state/", after: nil, limit: 10).entries.isEmpty)
        #expect(world.integration() == nil)
    }

    @Test func missingUnknownOrRepeatedStateIsInvalid() throws {
        let world = World()
        let query = approve(world, state: dialogState(world))
        let code = try #require(QueryParameters(parsing: query).single("code"))
        for bad in [
            "code=\(code)", "code=\(code)&state=nosuchstate000000000000000000000000000000",
            "code=\(code)&state=a&state=b", "state=\(QueryParameters(parsing: query).single("state") ?? "")",
        ] {
            #expect(callback(world, bad).header("Location") == "\(settingsURL)?error=meta_state_invalid")
        }
        #expect(world.integration() == nil)
    }

    @Test func aStateWorksOnce() {
        let world = World()
        let query = approve(world, state: dialogState(world))
        #expect(callback(world, query).header("Location") == "\(settingsURL)?connected=meta")
        #expect(callback(world, query).header("Location") == "\(settingsURL)?error=meta_state_invalid")
    }

    @Test func aStateExpiresAfterTenMinutes() {
        let world = World()
        let query = approve(world, state: dialogState(world))
        world.clock.advance(601)
        #expect(callback(world, query).header("Location") == "\(settingsURL)?error=meta_state_invalid")
        #expect(world.integration() == nil)
    }

    @Test func anotherTenantsStateIsInvalidAndBurned() {
        let world = World()
        let query = approve(world, state: dialogState(world, tenant: "tenant_a"))
        #expect(callback(world, query, tenant: "tenant_b").header("Location") == "\(settingsURL)?error=meta_state_invalid")
        #expect(callback(world, query, tenant: "tenant_a").header("Location") == "\(settingsURL)?error=meta_state_invalid")
        #expect(world.integration("tenant_b") == nil && world.integration("tenant_a") == nil)
    }

    @Test func noSessionIsStateInvalidNeverA401() {
        let world = World()
        let query = approve(world, state: dialogState(world))
        let response = callback(world, query, tenant: nil)
        #expect(response.status == 302)
        #expect(response.header("Location") == "\(settingsURL)?error=meta_state_invalid")
    }

    @Test(arguments: ["oauth/access_token", "me", "debug_token", "me/adaccounts"])
    func aGraphFailureAtAnyStepIsExchangeFailedAndWritesNothing(path: String) {
        let world = World()
        let query = approve(world, state: dialogState(world))
        world.queueFault(.serverError, path: path)
        #expect(callback(world, query).header("Location") == "\(settingsURL)?error=meta_exchange_failed")
        #expect(world.integration() == nil)
        #expect(world.credential() == nil)
    }

    @Test func aFailedReconnectLeavesThePreviousConnectionIntact() throws {
        let world = World()
        world.connectTenant()
        let before = try #require(world.integration())
        let credentialBefore = try #require(world.credential())
        let query = approve(world, state: dialogState(world))
        world.queueFault(.rateLimit, path: "me/adaccounts")
        #expect(callback(world, query).header("Location") == "\(settingsURL)?error=meta_exchange_failed")
        #expect(world.integration() == before)
        #expect(world.credential() == credentialBefore)
    }

    @Test func aReusedCodeIsExchangeFailed() throws {
        let world = World()
        let query = approve(world, state: dialogState(world))
        let code = try #require(QueryParameters(parsing: query).single("code"))
        #expect(callback(world, query).header("Location") == "\(settingsURL)?connected=meta")
        let second = dialogState(world)
        #expect(callback(world, "code=\(code)&state=\(second)").header("Location") == "\(settingsURL)?error=meta_exchange_failed")
    }

    @Test func aReconnectKeepsTheTenantsChoices() throws {
        let world = World()
        world.connectTenant()
        let put = world.run(
            SettingsHandler.self,
            world.request(
                "PUT", "/api/connect/meta/settings",
                body: #"{"adAccountId":"act_1000001","pixelId":"2000101","testEventCode":"TEST123"}"#))
        #expect(put.status == 200)
        world.connectTenant()
        let integration = try #require(world.integration())
        #expect(integration.config.adAccountId == "act_1000001")
        #expect(integration.config.pixelId == "2000101")
        #expect(integration.config.testEventCode == "TEST123")
    }

    @Test func misconfigurationIsA500NotARedirect() {
        let world = World()
        world.config.credentialKeys = nil
        let response = callback(world, "code=x&state=y")
        #expect(response.status == 500)
        #expect(response.text.contains("CREDENTIALS_KEY"))
    }
}

@Suite struct DisconnectTests {
    func disconnect(_ world: World, tenant: String = "tenant_a") -> CGIResponse {
        world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect", tenant: tenant))
    }

    func storedToken(_ world: World, _ tenant: String = "tenant_a") throws -> String {
        try CredentialCipher(keys: world.config.credentialKeys!, random: SecureRandom())
            .open(try #require(world.credential(tenant)).token, context: IntegrationCredential.sealContext(tenantId: tenant))
    }

    func isValidAtMeta(_ world: World, _ token: String) throws -> Bool {
        let graph = GraphClient(
            config: world.config, app: try world.config.metaApp(), transport: world.transport, logger: world.logs.logger())
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
        let token = try CredentialCipher(keys: world.config.credentialKeys!, random: SecureRandom())
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
