import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// Facebook Login for Business (issue 15, part 1): the dialog names the configuration instead of
/// scopes; a configuration that gives a system-user token connects without the long-lived
/// exchange, records the client's business, and its token is only ever checked, never renewed.
@Suite struct LoginForBusinessTests {
    static let configId = "1234567890123"

    @Test func theDialogNamesTheConfigurationInsteadOfScopes() throws {
        let world = World(environment: ["META_LOGIN_CONFIG_ID": Self.configId])
        let connect = world.run(ConnectHandler.self, world.request("GET", "/api/connect/meta", cookie: true))
        let location = try #require(connect.header("Location"))
        let query = QueryParameters(parsing: location.split(separator: "?", maxSplits: 1).last.map(String.init) ?? "")
        #expect(query.single("config_id") == Self.configId)
        #expect(query.single("override_default_response_type") == "true")
        #expect(query.single("response_type") == "code")
        #expect(!query.contains("scope"))
        #expect(throws: ConfigError.self) {
            try Config.load(from: world.environment(["META_LOGIN_CONFIG_ID": "config-1"]), workingDirectory: "/")
        }
    }

    @Test func aSystemUserTokenIsNeverExchangedAndOnlyChecked() throws {
        let world = World(environment: ["META_LOGIN_CONFIG_ID": Self.configId])
        #expect(world.connectTenant(approve: "&sandbox_token_type=system_user").hasSuffix("?connected=meta"))
        let exchanges = { world.transport.requests.withLock { $0.filter { $0.url.contains("fb_exchange_token") }.count } }
        #expect(exchanges() == 0)
        let credential = try #require(world.credential())
        #expect(credential.tokenType == "system_user" && credential.expiresAt == nil && credential.dataAccessExpiresAt == nil)
        #expect(credential.metaUserId == SandboxData.systemUserId)
        #expect(world.integration()?.tokenType == "system_user")
        #expect(world.integration()?.clientBusinessId == SandboxData.businessId)
        // The ad accounts are the ones the configuration's grant names, not every listed one.
        #expect(world.integration()?.config.adAccounts.map(\.id) == ["act_1000001", "act_1000002"])
        #expect(!world.transport.paths.contains { $0.hasSuffix("me/adaccounts") })
        let settings = world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings")).json
        #expect(settings["tokenType"] as? String == "system_user")
        #expect(settings["clientBusinessId"] as? String == SandboxData.businessId)
        #expect(settings["tokenExpiresAt"] == nil)
        // Two months on: checked each time it is due, never renewed; events still go through.
        for _ in 0..<60 {
            world.clock.advance(DueIndex.period + DueIndex.jitter + 60)
            let summary = world.refreshTokens()
            #expect(summary.renewed == 0 && summary.failed == 0, "\(summary)")
        }
        #expect(exchanges() == 0)
        #expect(world.integration()?.lastRefresh?.outcome == "checked")
        #expect(
            world.run(
                SettingsHandler.self,
                world.request(
                    "PUT", "/api/connect/meta/settings",
                    body: #"{"adAccountId":"act_1000001","pixelId":"2000101"}"#)
            ).status == 200)
        #expect(world.send(world.lead("bisu-1")).status == 200)
    }

    /// Meta's deauthorize callback and disconnect (with the revoke at Meta) as for a user token.
    @Test func aSystemUserConnectionIsDeauthorizedAndDisconnectedAsAUserOne() throws {
        let world = World(environment: ["META_LOGIN_CONFIG_ID": Self.configId])
        world.connectTenant("bisu_a", approve: "&sandbox_token_type=system_user")
        // Another tenant connected through the same system user: a system user is never
        // treated as a shared grant, so the disconnect revokes it anyway.
        world.connectTenant("bisu_c", approve: "&sandbox_token_type=system_user")
        let disconnect = world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect", tenant: "bisu_a"))
        #expect(disconnect.status == 200 && disconnect.json["revokedAtMeta"] as? Bool == true, "\(disconnect.text)")
        world.connectTenant("bisu_b", approve: "&sandbox_token_type=system_user")
        let deauthorize = world.metaCallback("/api/connect/meta/deauthorize", world.signedRequest(user: SandboxData.systemUserId))
        #expect(deauthorize.status == 200)
        #expect(world.integration("bisu_b")?.status == .disconnected)
        #expect(world.integration("bisu_b")?.statusReason == "deauthorized_at_meta")
    }

    /// The same configuration flow with a user token: exchanged for a long-lived one as before.
    @Test func aUserTokenThroughAConfigurationIsExchangedAsBefore() throws {
        let world = World(environment: ["META_LOGIN_CONFIG_ID": Self.configId])
        #expect(world.connectTenant().hasSuffix("?connected=meta"))
        #expect(world.transport.requests.withLock { $0.filter { $0.url.contains("fb_exchange_token") }.count } == 1)
        #expect(world.credential()?.tokenType == nil && world.credential()?.expiresAt != nil)
        #expect(world.integration()?.tokenType == "user" && world.integration()?.clientBusinessId == nil)
    }
}
