import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// Several datasets per tenant and test codes that end, through the executables under lighttpd
/// (issue 34): what Meta's side (the Graph sandbox) received, event by event.
@Suite(.serialized) struct DatasetEndToEndTests {
    static let store = SandboxData.offlineDataset

    static func sale(_ id: String) -> String {
        #"{"eventName":"Purchase","eventTime":\#(Int64(Date().timeIntervalSince1970) - 60),"actionSource":"physical_store","#
            + #""eventId":"\#(id)","userData":{"em":"store@example.com"},"customData":{"value":20,"currency":"EUR"}}"#
    }

    /// Each delivered event's id with the test code it came with (`-` for none).
    static func codes(_ host: LighttpdHost, pixel: String) throws -> [String: String] {
        let answer = try host.send("GET", "/graph/sandbox/events?pixel=\(pixel)")
        let events = (try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any])?["events"] as? [[String: Any]] ?? []
        var found: [String: String] = [:]
        for stored in events {
            if let id = (stored["event"] as? [String: Any])?["event_id"] as? String {
                found[id] = stored["test_event_code"] as? String ?? "-"
            }
        }
        return found
    }

    static func put(_ host: LighttpdHost, _ bearer: [(String, String)], _ body: String) throws -> HTTPResponse {
        try host.send("PUT", "/api/connect/meta/settings", headers: bearer, body: body)
    }

    @Test func eventsGoToTheirDatasetsWithTheCodeThatApplies() throws {
        let host = try LighttpdHost()
        let bearer = try host.readyTenant("tenant_datasets")
        #expect(try Self.put(host, bearer, #"{"datasets":{"physical_store":"\#(Self.store)"}}"#).status == 200)

        // A website event to the pixel, a store's sale to its dataset; the first request with a
        // code of its own, the second without.
        let first = try host.events(bearer, #"{"events":[\#(LighttpdHost.lead("web1")),\#(Self.sale("sale1"))],"testEventCode":"REQ1"}"#)
        #expect(first.status == 200 && first.json["eventsReceived"] as? Int == 2)
        #expect(try host.events(bearer, LighttpdHost.lead("web2")).status == 200)
        #expect(try Self.codes(host, pixel: "2000101") == ["web1": "REQ1", "web2": "-"])
        #expect(try Self.codes(host, pixel: Self.store) == ["sale1": "REQ1"])

        // A tenant's code that ends in four to five seconds (the time is written in whole
        // seconds): sent until then, never after.
        let end = Date().addingTimeInterval(5).formatted(.iso8601)
        #expect(try Self.put(host, bearer, #"{"testEventCode":"TEN1","testEventCodeExpiresAt":"\#(end)"}"#).status == 200)
        #expect(try host.events(bearer, LighttpdHost.lead("during")).status == 200)
        let ends = try Date(end, strategy: .iso8601)
        usleep(UInt32(max(0, ends.timeIntervalSinceNow + 0.5) * 1_000_000))
        #expect(try host.events(bearer, LighttpdHost.lead("after")).status == 200)
        let web = try Self.codes(host, pixel: "2000101")
        #expect(web["during"] == "TEN1" && web["after"] == "-")
        let cron = try host.runCronDirectly()
        #expect((cron["testCodes"] as? [String: Any])?["cleared"] as? Int == 1, "\(cron)")
        let settings = try host.send("GET", "/api/connect/meta/settings", headers: bearer)
        let view = try JSONSerialization.jsonObject(with: Data(settings.body)) as? [String: Any]
        #expect(view?["testEventCode"] == nil)
        let status = view?["datasetStatus"] as? [[String: Any]] ?? []
        #expect(status.map { $0["id"] as? String } == ["2000101", Self.store])
    }

    @Test func anUnreachableDatasetHoldsOnlyItsOwnEvents() throws {
        let host = try LighttpdHost()
        let bearer = try host.readyTenant("tenant_held")
        #expect(try Self.put(host, bearer, #"{"datasets":{"physical_store":"\#(Self.store)"}}"#).status == 200)
        try host.fault("object_unavailable", path: "\(Self.store)/events", remaining: 20)

        let mixed = try host.events(bearer, #"{"events":[\#(Self.sale("held1")),\#(LighttpdHost.lead("flow1"))]}"#)
        #expect(mixed.status == 202 && mixed.json["eventsReceived"] as? Int == 1 && mixed.json["queued"] as? Int == 1)
        // The drain tries the store's events (Meta still refuses the dataset); the website's flow.
        let drained = try host.runCronDirectly()
        #expect((drained["outbox"] as? [String: Any])?["retried"] as? Int == 1, "\(drained)")
        #expect(try host.events(bearer, LighttpdHost.lead("flow2")).status == 200)
        #expect(try Set(host.deliveredIds()) == ["flow1", "flow2"])
        #expect(try host.deliveredIds(pixel: Self.store).isEmpty)
        let settings = try host.send("GET", "/api/connect/meta/settings", headers: bearer)
        let view = try JSONSerialization.jsonObject(with: Data(settings.body)) as? [String: Any]
        #expect(view?["pixelStatus"] as? String == "available")
        let status = view?["datasetStatus"] as? [[String: Any]] ?? []
        #expect(status.map { $0["status"] as? String } == ["available", "unavailable"])
        #expect((view?["delivery"] as? [String: Any])?["queued"] as? Int == 1)
    }
}
