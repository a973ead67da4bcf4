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

@Suite struct SendEventFaultTests {
    @Test(arguments: [GraphSandbox.Fault.Kind.timeout, .serverError, .rateLimit])
    func aTemporaryFailureQueuesEverything(kind: GraphSandbox.Fault.Kind) {
        let world = World()
        world.readyTenant()
        world.queueFault(kind, path: "2000101/events")
        let response = world.send(world.batch(["a", "b"]))
        #expect(response.status == 202)
        #expect(response.json["queued"] as? Int == 2)
        world.clock.advance(3600)
        #expect(world.drain().outbox.sent == 2)
        #expect(world.deliveredIds().sorted() == ["a", "b"])
    }

    @Test func aStoreThatCannotQueueIsA503SoTheCallerRetries() throws {
        let world = World()
        world.readyTenant()
        world.queueFault(.serverError, path: "2000101/events")
        // The outbox folder cannot be created: a file stands where it would go.
        try FileManager.default.createDirectory(atPath: world.folder.path + "/store/meta", withIntermediateDirectories: true)
        try Data().write(to: URL(fileURLWithPath: world.folder.path + "/store/meta/outbox"))
        let response = world.send(world.lead("s1"))
        #expect(response.status == 503)
        #expect(response.errorCode == "store_unavailable")
        #expect(response.header("Retry-After") == "5")
    }
}
