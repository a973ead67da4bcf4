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

@Suite struct OutboxBoundTests {
    @Test func pastTheBoundNewEventsAreRefusedNotDropped() {
        let world = World(environment: ["OUTBOX_MAX_EVENTS": "2"])
        world.readyTenant()
        world.queueFault(.serverError, path: "2000101/events", count: 2)
        let tooMany = world.send(world.batch(["x1", "x2", "x3"]))
        #expect(tooMany.status == 503)
        #expect(tooMany.errorCode == "outbox_full")
        #expect(tooMany.header("Retry-After") == "60")
        let fits = world.send(world.batch(["x1", "x2"]))
        #expect(fits.status == 202)
        #expect(fits.json["queued"] as? Int == 2)
    }

    /// Two requests that both count the outbox before either writes (held at the count until
    /// both arrive, when nothing serializes them) must not both fit into the room for one.
    @Test func twoRequestsNeverFillTheOutboxTogetherPastItsBound() throws {
        let world = World(environment: ["OUTBOX_MAX_EVENTS": "50"])
        world.readyTenant()
        world.queueFault(.serverError, path: "2000101/events", count: 100)
        world.storeOverride = RendezvousStore(base: world.store, prefix: "meta/outbox/", parties: 2, waitSeconds: 1)
        let answers = Mutex<[CGIResponse]>([])
        parallel(2) { request in
            let answer = world.send(world.batch((0..<40).map { "r\(request)-\($0)" }))
            answers.withLock { $0.append(answer) }
        }
        let statuses = answers.withLock { $0.map(\.status).sorted() }
        #expect(statuses == [202, 503], "\(answers.withLock { $0.map(\.text) })")
        #expect(try world.store.count(prefix: "meta/outbox/tenant_a/") == 40)
    }
}
