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

@Suite struct RefreshCronTests {
    @Test func theHTTPRouteNeedsTheCronSecret() {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789"])
        let none = world.run(RefreshCronHandler.self, world.request("POST", "/api/cron/meta/refresh", tenant: nil))
        #expect(none.status == 401)
        let wrong = world.run(
            RefreshCronHandler.self,
            world.request(
                "POST", "/api/cron/meta/refresh", tenant: nil,
                headers: ["authorization": "Bearer nope"]))
        #expect(wrong.status == 401)
        let right = world.run(
            RefreshCronHandler.self,
            world.request(
                "POST", "/api/cron/meta/refresh", tenant: nil,
                headers: ["authorization": "Bearer cron-secret-0123456789"]))
        #expect(right.status == 200)
        #expect(right.json["outbox"] != nil)
    }

    @Test func withoutACronSecretTheRouteIsMisconfigured() {
        let world = World()
        let response = world.run(RefreshCronHandler.self, world.request("POST", "/api/cron/meta/refresh", tenant: nil))
        #expect(response.status == 500)
        #expect(response.text.contains("CRON_SECRET"))
    }
}
