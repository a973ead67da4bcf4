import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct ConnectTests {
    @Test func redirectsToTheDialogWithAFreshStateBoundToTheTenant() throws {
        let world = World()
        let response = world.run(ConnectHandler.self, world.request("GET", "/api/connect/meta", cookie: true))
        #expect(response.status == 302)
        let location = try #require(response.header("Location"))
        #expect(location.hasPrefix("\(World.graphBase)/\(MetaSettings.defaultAPIVersion)/dialog/oauth?"))
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
        world.config.meta.appID = nil
        let response = world.run(ConnectHandler.self, world.request("GET", "/api/connect/meta"))
        #expect(response.status == 500)
        #expect(response.errorCode == "misconfigured")
        #expect(response.text.contains("META_APP_ID"))
    }
}
