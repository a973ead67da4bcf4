import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage

#if canImport(Glibc)
    import Glibc
#endif

/// Many handler processes at once, as a CGI host under load runs them.
@Suite(.serialized) struct ConcurrencyTests {

    @Test func sixtySendersDuringAnOutageThenThreeCronsDeliverEachEventOnce() throws {
        let world = try CGIWorld()
        world.extra["CRON_SECRET"] = "cron-secret-0123456789"
        try world.connectWithPixel()
        try world.fault(.serverError, path: "2000101/events", remaining: 1000)

        let statuses = Mutex<[Int]>([])
        parallel(60) { index in
            let body = LighttpdHost.lead("concurrent-\(index)")
            let status = (try? world.run("send-event", "POST", "/api/connect/meta/events", body: body).status) ?? -1
            statuses.withLock { $0.append(status) }
        }
        #expect(statuses.withLock { $0 }.allSatisfy { $0 == 202 }, "statuses: \(statuses.withLock { $0 }.sorted())")
        try world.clearFaults()

        let env = world.configuration.filter { Config.variables.contains($0.key) }
        parallel(3) { _ in _ = try? Executables.runCGI("refresh-cron", environment: env) }
        _ = try Executables.runCGI("refresh-cron", environment: env)
        let ids = try world.deliveredEventIds()
        #expect(ids.count == 60)
        #expect(Set(ids).count == 60)
    }

    @Test func fortyConcurrentConnectsGiveFortyStatesEachUsableOnce() throws {
        let world = try CGIWorld()
        let locations = Mutex<[String]>([])
        parallel(40) { _ in
            if let location = try? world.run("connect", "GET", "/api/connect/meta", cookie: true).header("Location") {
                locations.withLock { $0.append(location) }
            }
        }
        let dialogs = locations.withLock { $0 }
        let states = dialogs.compactMap { QueryParameters(parsing: $0.split(separator: "?")[1]).single("state") }
        #expect(states.count == 40)
        #expect(Set(states).count == 40)
        // Each state completes one callback, and only one.
        for dialog in dialogs.prefix(5) {
            let approved = try CurlTransport().send(HTTPRequest(method: "GET", url: dialog + "&sandbox_action=approve"))
            let query = String(approved.headers["location"]!.split(separator: "?", maxSplits: 1)[1])
            let first = try world.run("callback", "GET", "/api/connect/meta/callback?" + query, cookie: true)
            #expect(first.header("Location")?.hasSuffix("connected=meta") == true)
            let again = try world.run("callback", "GET", "/api/connect/meta/callback?" + query, cookie: true)
            #expect(again.header("Location")?.hasSuffix("error=meta_state_invalid") == true)
        }
    }

    @Test func racingSettingsUpdatesLeaveAWholeRecord() throws {
        let world = try CGIWorld()
        _ = try world.run("callback", "GET", "/api/connect/meta/callback?" + world.approvedCallbackQuery(), cookie: true)
        let statuses = Mutex<[Int]>([])
        parallel(16) { index in
            let account = index % 2 == 0 ? ("act_1000001", "2000101") : ("act_1000002", "2000202")
            let body = #"{"adAccountId":"\#(account.0)","pixelId":"\#(account.1)","testEventCode":"T\#(index)"}"#
            let status = (try? world.run("settings", "PUT", "/api/connect/meta/settings", body: body).status) ?? -1
            statuses.withLock { $0.append(status) }
        }
        #expect(statuses.withLock { $0 }.allSatisfy { $0 == 200 || $0 == 409 })
        #expect(statuses.withLock { $0 }.contains(200))
        let view = try world.run("settings", "GET", "/api/connect/meta/settings")
        let account = view.json["adAccountId"] as? String
        let pixel = view.json["pixelId"] as? String
        #expect((account == "act_1000001" && pixel == "2000101") || (account == "act_1000002" && pixel == "2000202"))
    }

    @Test func aHandlerKilledMidWriteLeavesTheStoreReadable() throws {
        let folder = TemporaryFolder()
        let url = "file://" + folder.path + "/store"
        for round in 0..<15 {
            let process = try Executables.start("compass-dev", arguments: ["store-increment", url, "kill/counter", "100000"])
            usleep(UInt32(20_000 + round * 7_000))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        let store = try FileStore(root: folder.path + "/store")
        let value = try #require(try store.get("kill/counter"))
        #expect(Int(String(decoding: value.value, as: UTF8.self)) != nil)
        #expect(try store.list(prefix: "kill/", after: nil, limit: 10).entries.map(\.key) == ["kill/counter"])
        // The next writer carries on from the last whole value.
        let before = Int(String(decoding: value.value, as: UTF8.self))!
        let finisher = try Executables.start("compass-dev", arguments: ["store-increment", url, "kill/counter", "5"])
        finisher.waitUntilExit()
        #expect(finisher.terminationStatus == 0)
        #expect(try store.get("kill/counter")?.value == Array(String(before + 5).utf8))
    }
}

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
