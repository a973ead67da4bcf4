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
        // Nonce, time and tag, signed for the tenant; nothing is stored for it.
        #expect(Base64URL.decode(state)?.count == 40)
        let states = OAuthStates(sessionSecret: try world.config.platform.sessionSecret())
        #expect(states.check(state, tenant: "tenant_a", now: world.clock.now) == .valid)
        #expect(states.check(state, tenant: "tenant_b", now: world.clock.now) == .otherTenant)
        #expect(
            !state.contains("tenant_a") && !(Base64URL.decode(state).map { String(decoding: $0, as: UTF8.self) } ?? "").contains("tenant_a")
        )
        #expect(try world.store.list(prefix: "meta/", after: nil, limit: 10).entries.isEmpty)
    }

    /// A state altered anywhere (nonce, time or tag), made under another secret, or past its
    /// ten minutes is refused; one issued up to a minute ahead (another host's clock) is not.
    @Test func aStateIsCheckedByItsTagAndItsTime() throws {
        let world = World()
        let states = OAuthStates(sessionSecret: try world.config.platform.sessionSecret())
        let now = world.clock.now
        let state = states.issue(tenant: "tenant_a", nonce: Array(repeating: 7, count: 16), at: now)
        let bytes = try #require(Base64URL.decode(state))
        for place in [0, 15, 16, 23, 24, 39] {
            var altered = bytes
            altered[place] ^= 1
            #expect(states.check(Base64URL.encode(altered), tenant: "tenant_a", now: now) != .valid, "byte \(place)")
        }
        #expect(
            OAuthStates(sessionSecret: Array("another secret of 32 bytes or more!!".utf8)).check(state, tenant: "tenant_a", now: now)
                == .otherTenant)
        #expect(states.check(state, tenant: "tenant_a", now: now.addingTimeInterval(600)) == .valid)
        #expect(states.check(state, tenant: "tenant_a", now: now.addingTimeInterval(601)) == .expired)
        #expect(states.check(state, tenant: "tenant_a", now: now.addingTimeInterval(-60)) == .valid)
        #expect(states.check(state, tenant: "tenant_a", now: now.addingTimeInterval(-61)) == .expired)
        #expect(states.check("nosuchstate", tenant: "tenant_a", now: now) == .notSigned)
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

    @Test func missingScopesAreReadAsTheParserReadsThem() {
        let records = [
            #"{"missingScopes":["business_management"],"status":"connected"}"#,
            #"{"status":"connected","adAccounts":[{"id":"act_1","pixels":[{"id":"2"}]}],"missingScopes":["ads_read"]}"#,
            #"{"missingScopes":[],"status":"connected"}"#, #"{"status":"connected"}"#, #"{"missingScopes":"ads_read"}"#,
            #"{"missingScopes":null}"#, #"{"missingScopes":{"a":1}}"#, #"[{"missingScopes":["ads_read"]}]"#,
            // Declined by the tape (an escape, a name outside ASCII): read by the parser.
            #"{"name":"a \"quoted\" name","missingScopes":["ads_read"]}"#, #"{"é":1,"missingScopes":["ads_read"]}"#,
            #"{"name":"\u00e9","missingScopes":[]}"#,
            // Neither reads it.
            #"{"missingScopes":["ads_read"]"#, "", "not json",
        ]
        for record in records {
            let parsed = ((try? JSONParser.parse(Array(record.utf8)))?["missingScopes"]?.array).map { !$0.isEmpty } ?? false
            #expect(ConnectHandler.lacksScopes(Array(record.utf8)) == parsed, "\(record)")
        }
        #expect(ConnectHandler.lacksScopes(Array(records[1].utf8)) && ConnectHandler.lacksScopes(Array(records[8].utf8)))
        #expect(!ConnectHandler.lacksScopes(Array(records[2].utf8)))
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
