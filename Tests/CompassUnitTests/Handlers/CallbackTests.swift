import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

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
        let token = try CredentialCipher(keys: world.config.platform.credentialKeys!, random: SecureRandom())
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
        // The denied state was used up: approving with it afterwards is refused.
        #expect(callback(world, approve(world, state: state)).header("Location") == "\(settingsURL)?error=meta_state_invalid")
        #expect(world.integration() == nil)
    }

    /// A state an earlier build stored (a record under the digest of a 32-byte nonce) still
    /// connects once, within its ten minutes.
    @Test func aStoredStateFromAnEarlierBuildWorksOnce() throws {
        let world = World()
        let nonce = Base64URL.encode(Array(repeating: UInt8(9), count: 32))
        try RecordStore(store: world.store).create(
            OAuthState(tenantId: "tenant_a", createdAt: world.clock.now, rerequest: false), at: RecordKey.oauthState(nonce: nonce),
            ttl: OAuthState.lifetimeSeconds)
        let query = approve(world, state: nonce)
        #expect(callback(world, query).header("Location") == "\(settingsURL)?connected=meta")
        #expect(callback(world, query).header("Location") == "\(settingsURL)?error=meta_state_invalid")
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
        world.config.platform.credentialKeys = nil
        let response = callback(world, "code=x&state=y")
        #expect(response.status == 500)
        #expect(response.text.contains("CREDENTIALS_KEY"))
    }
}
