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
