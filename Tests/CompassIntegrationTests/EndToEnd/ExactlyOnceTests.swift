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

/// Several copies of one event at the same moment, as a pipeline that retries sends them
/// (a client timeout, a redelivered queue message): each event reaches Meta once.
@Suite(.serialized) struct ExactlyOnceTests {
    static let cronSecret = "cron-secret-exactly-once-0123456789"

    func connectedWorld() throws -> CGIWorld {
        let world = try CGIWorld()
        world.extra["CRON_SECRET"] = Self.cronSecret
        try world.connectWithPixel()
        return world
    }

    /// `copies` processes at once, each sending the event `id`: their answers.
    func sendAtOnce(_ world: CGIWorld, id: String, copies: Int) -> [CGIWorld.Response] {
        let answers = Mutex<[CGIWorld.Response]>([])
        parallel(copies) { _ in
            if let answer = try? world.run("send-event", "POST", "/api/connect/meta/events", body: LighttpdHost.lead(id)) {
                answers.withLock { $0.append(answer) }
            }
        }
        return answers.withLock { $0 }
    }

    @Test func eightCopiesAtOnceReachMetaOnce() throws {
        let world = try connectedWorld()
        var received = 0
        var duplicates = 0
        var copies = 0
        for round in 0..<50 {
            let answers = sendAtOnce(world, id: "same-\(round)", copies: 8)
            copies += answers.count
            for answer in answers {
                #expect(answer.status == 200, "\(answer.body)")
                received += answer.json["eventsReceived"] as? Int ?? 0
                duplicates += answer.json["duplicates"] as? Int ?? 0
            }
        }
        #expect(copies == 400)
        #expect(received + duplicates == copies)
        let delivered = try world.deliveredEventIds()
        #expect(delivered.count == 50 && Set(delivered).count == 50, "\(delivered.count) deliveries of \(Set(delivered).count) events")
    }

    @Test func copiesAcrossTheEndOfAnOutageReachMetaOnce() throws {
        let world = try connectedWorld()
        // Meta fails the next 10 event requests, then is healthy again: copies sent around that
        // moment are sent directly, queued, or found queued or sent.
        try world.fault(.serverError, path: "2000101/events", remaining: 10)
        var accounted = 0
        var copies = 0
        for round in 0..<20 {
            let answers = sendAtOnce(world, id: "edge-\(round)", copies: 8)
            copies += answers.count
            for answer in answers {
                #expect([200, 202].contains(answer.status), "\(answer.body)")
                accounted +=
                    (answer.json["eventsReceived"] as? Int ?? 0) + (answer.json["duplicates"] as? Int ?? 0)
                    + (answer.json["queued"] as? Int ?? 0)
            }
        }
        #expect(copies == 160)
        #expect(accounted == copies, "every copy is sent, queued or a duplicate")
        let cron = try Executables.runCGI(
            "refresh-cron", environment: world.configuration.merging(["CRON_SECRET": Self.cronSecret]) { _, new in new })
        #expect(cron.status == 0, "\(cron.text)")
        let delivered = try world.deliveredEventIds()
        #expect(Set(delivered) == Set((0..<20).map { "edge-\($0)" }), "\(Set(delivered).count) of 20 events delivered")
        #expect(delivered.count == 20, "\(delivered.count) deliveries of 20 events")
    }
}
