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

#if canImport(Glibc)
    import Glibc
#endif

/// Security review finding 5: with `OUTBOX_MAX_EVENTS=50`, four parallel 40-event requests
/// during an outage left 161 queued, and replay wrote without looking at the bound.
@Suite(.serialized) struct ConcurrentOutboxBoundTests {
    static func events(_ prefix: String, _ count: Int) -> String {
        let now = Date().unixSeconds
        let items = (0..<count).map {
            #"{"eventName":"Lead","eventTime":\#(now - 60),"actionSource":"system_generated","eventId":"\#(prefix)-\#($0)","userData":{"external_id":"x\#($0)"}}"#
        }
        return #"{"events":["# + items.joined(separator: ",") + "]}"
    }

    @Test func parallelRequestsAndReplayNeverTakeTheOutboxPastItsBound() throws {
        let world = try CGIWorld()
        world.extra["OUTBOX_MAX_EVENTS"] = "50"
        try world.connectWithPixel()
        try world.fault(.serverError, path: "2000101/events", remaining: 1000)

        let answers = Mutex<[CGIWorld.Response]>([])
        parallel(4) { index in
            if let answer = try? world.run("send-event", "POST", "/api/connect/meta/events", body: Self.events("p\(index)", 40)) {
                answers.withLock { $0.append(answer) }
            }
        }
        let all = answers.withLock { $0 }
        #expect(all.count == 4)
        let queued = all.filter { $0.status == 202 }
        #expect(queued.count == 1 && queued.first?.json["queued"] as? Int == 40, "\(all.map(\.status))")
        for refused in all where refused.status != 202 {
            #expect(refused.status == 503 && ["outbox_full", "outbox_busy"].contains(refused.errorCode ?? ""), "\(refused.body)")
        }
        let store = try FileStore(root: world.folder.path + "/store")
        #expect(try store.count(prefix: "meta/outbox/tenant_a/") == 40)

        // 30 dead letters, room for 10: replay moves 10 and says why the rest stay.
        for index in 0..<30 { try world.storeDeadLetter("dead-\(index)") }
        let replay = try world.run("send-event", "POST", "/api/connect/meta/events/replay")
        #expect(replay.status == 200, "\(replay.body)")
        #expect(replay.json["replayed"] as? Int == 10 && replay.json["overLimit"] as? Int == 20, "\(replay.body)")
        #expect(try store.count(prefix: "meta/outbox/tenant_a/") == 50)
        #expect(try store.count(prefix: "meta/dead/tenant_a/") == 20)
    }
}
