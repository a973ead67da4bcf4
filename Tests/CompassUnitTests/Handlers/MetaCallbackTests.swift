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

@Suite struct MetaCallbackTests {
    @Test func deauthorizeDisconnectsEveryTenantOfThatUser() {
        let world = World()
        world.connectTenant("a1")
        world.connectTenant("a2")
        world.connectTenant("other", user: "10000000000099")
        let response = world.metaCallback("/api/connect/meta/deauthorize", world.signedRequest(user: SandboxData.defaultUserId))
        #expect(response.status == 200)
        for tenant in ["a1", "a2"] {
            #expect(world.integration(tenant)?.status == .disconnected)
            #expect(world.integration(tenant)?.statusReason == "deauthorized_at_meta")
            #expect(world.credential(tenant) == nil)
        }
        #expect(world.integration("other")?.status == .connected)
        let settings = world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings", tenant: "a1"))
        #expect(settings.json["status"] as? String == "disconnected")
        #expect(world.send(world.lead("x"), tenant: "a1").status == 404)
    }

    @Test func dataDeletionDeletesAndAnswersAStatusURL() throws {
        let world = World()
        world.connectTenant("d1")
        let response = world.metaCallback("/api/connect/meta/data-deletion", world.signedRequest(user: SandboxData.defaultUserId))
        #expect(response.status == 200)
        let code = try #require(response.json["confirmation_code"] as? String)
        #expect(response.json["url"] as? String == "\(World.base)/api/connect/meta/data-deletion?code=\(code)")
        #expect(world.integration("d1") == nil && world.credential("d1") == nil)
        let status = world.run(MetaWebhooksHandler.self, world.request("GET", "/api/connect/meta/data-deletion?code=\(code)", tenant: nil))
        #expect(status.status == 200)
        #expect(status.json["status"] as? String == "completed")
        #expect(status.json["tenants"] as? Int == 1)
        let unknown = world.run(
            MetaWebhooksHandler.self, world.request("GET", "/api/connect/meta/data-deletion?code=00000000000000000000", tenant: nil))
        #expect(unknown.status == 404)
    }

    /// Security review: a signed_request could be replayed within its hour. A replayed data
    /// deletion answers the first answer; a replayed deauthorize changes nothing new.
    @Test func aReplayedSignedRequestAnswersAsTheFirstAndChangesNothing() throws {
        let world = World()
        world.connectTenant("d1")
        let deletion = world.signedRequest(user: SandboxData.defaultUserId)
        let first = world.metaCallback("/api/connect/meta/data-deletion", deletion)
        let again = world.metaCallback("/api/connect/meta/data-deletion", deletion)
        #expect(first.status == 200 && again.status == 200)
        #expect(again.text == first.text)
        #expect(try world.store.count(prefix: "meta/deletion/") == 1)

        let deauthorize = world.signedRequest(user: SandboxData.defaultUserId, issuedAt: world.clock.now.unixSeconds - 1)
        world.connectTenant("d2")
        #expect(world.metaCallback("/api/connect/meta/deauthorize", deauthorize).status == 200)
        #expect(world.integration("d2")?.status == .disconnected)
        // The tenant connects again within the hour; the same request arrives once more.
        world.clock.advance(600)
        world.connectTenant("d2")
        let replayed = world.metaCallback("/api/connect/meta/deauthorize", deauthorize)
        #expect(replayed.status == 200 && replayed.text == #"{"success":true}"#)
        #expect(world.integration("d2")?.status == .connected)
        #expect(world.credential("d2") != nil)
    }

    @Test func refusesBadStaleOrForeignSignatures() {
        let world = World()
        world.connectTenant()
        let path = "/api/connect/meta/deauthorize"
        #expect(world.metaCallback(path, world.signedRequest(user: SandboxData.defaultUserId, secret: "another-apps-secret")).status == 401)
        #expect(
            world.metaCallback(path, world.signedRequest(user: SandboxData.defaultUserId, issuedAt: world.clock.now.unixSeconds - 7200))
                .status == 401)
        #expect(world.metaCallback(path, world.signedRequest(user: SandboxData.defaultUserId, algorithm: "none")).status == 400)
        #expect(world.metaCallback(path, "not.a-signed-request!").status == 400)
        #expect(world.metaCallback(path, "").status == 400)
        let tampered = world.signedRequest(user: "10000000000099").split(separator: ".")
        let forged =
            String(tampered[0]) + "."
            + Base64URL.encode(
                Array(
                    #"{"algorithm":"HMAC-SHA256","issued_at":\#(world.clock.now.unixSeconds),"user_id":"\#(SandboxData.defaultUserId)"}"#
                        .utf8))
        #expect(world.metaCallback(path, forged).status == 401)
        #expect(world.integration()?.status == .connected)
    }
}
