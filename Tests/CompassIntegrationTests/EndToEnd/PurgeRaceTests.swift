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

/// A disconnect that races a send or a drain held at Meta's call leaves nothing of the tenant:
/// no outbox entry, dead letter, sent marker or delivery figure is written after the purge began.
@Suite struct PurgeRaceTests {
    /// Every record of the world's store naming the tenant, in its key or its content (an
    /// emptied folder is no record: the sweep removes those).
    func traces(_ world: World, _ tenant: String = "tenant_a") -> [String] {
        let root = world.folder.path + "/store"
        let paths = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []
        return paths.filter { path in
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isFolder), !isFolder.boolValue else {
                return false
            }
            return path.contains(tenant) || ((try? String(contentsOfFile: root + "/" + path, encoding: .utf8))?.contains(tenant) ?? false)
        }
    }

    /// Holds the next events call at Meta until `release`, answering it with `answer` (nil: the sandbox's).
    final class Gate: @unchecked Sendable {
        let arrived = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let held = Mutex(false)
        func install(on world: World, answer: HTTPResponse?) {
            world.transport.intercept.withLock {
                $0 = { [self] request in
                    guard request.url.contains("/events"),
                        held.withLock({
                            let first = !$0
                            $0 = true
                            return first
                        })
                    else { return nil }
                    arrived.signal()
                    release.wait()
                    return answer
                }
            }
        }
    }

    func disconnect(_ world: World) {
        #expect(world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect")).status == 200)
    }

    @Test(arguments: [false, true])
    func aSendHeldAtMetaWhileTheTenantDisconnectsLeavesNothing(metaFails: Bool) throws {
        let world = World()
        world.readyTenant()
        let gate = Gate()
        let failure = HTTPResponse(
            status: 500, headers: ["content-type": "application/json"],
            body: Array(#"{"error":{"message":"down","type":"OAuthException","code":2,"is_transient":true}}"#.utf8))
        let accepted = HTTPResponse(
            status: 200, headers: ["content-type": "application/json"],
            body: Array(#"{"events_received":2,"fbtrace_id":"held"}"#.utf8))
        gate.install(on: world, answer: metaFails ? failure : accepted)
        let answered = DispatchSemaphore(value: 0)
        let status = Mutex(0)
        DispatchQueue.global().async {
            status.withLock { $0 = world.send(world.batch(["r1", "r2"])).status }
            answered.signal()
        }
        gate.arrived.wait()
        disconnect(world)
        gate.release.signal()
        answered.wait()
        // Sent: Meta has the events and the answer says so; failed: nothing was stored, 404.
        #expect(status.withLock { $0 } == (metaFails ? 404 : 200))
        #expect(traces(world) == [], "\(traces(world))")
    }

    @Test func aDrainHeldAtMetaWhileTheTenantDisconnectsLeavesNothing() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        world.queueFault(.serverError, count: 1)
        #expect(world.send(world.batch(["d1", "d2", "d3"])).status == 202)
        world.clock.advance(120)
        let gate = Gate()
        gate.install(
            on: world,
            answer: HTTPResponse(
                status: 500, headers: ["content-type": "application/json"],
                body: Array(#"{"error":{"message":"down","type":"OAuthException","code":2,"is_transient":true}}"#.utf8)))
        let drained = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = world.drain()
            drained.signal()
        }
        gate.arrived.wait()
        disconnect(world)
        gate.release.signal()
        drained.wait()
        // Whatever the held drain left is removed by the next run, which does not come back.
        world.transport.intercept.withLock { $0 = nil }
        world.clock.advance(7200)
        _ = world.drain()
        #expect(traces(world) == [], "\(traces(world))")
        world.clock.advance(7200)
        #expect(world.drain().outbox.tenants == 0)
    }

    /// A tenant that connects again after a disconnect queues its events as before.
    @Test func aNewConnectionLiftsThePurgeMarker() throws {
        let world = World()
        world.readyTenant()
        disconnect(world)
        world.readyTenant()
        world.queueFault(.serverError, count: 1)
        #expect(world.send(world.batch(["n1"])).status == 202)
    }
}
