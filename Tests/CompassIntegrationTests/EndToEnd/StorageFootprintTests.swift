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

/// What the file store holds per tenant and per queued event, measured (docs/storage.md).
@Suite struct StorageFootprintTests {
    static func bytes(under folder: String) -> (bytes: Int, files: Int) {
        let paths = FileManager.default.enumerator(atPath: folder)?.compactMap { $0 as? String } ?? []
        var total = 0
        var files = 0
        for path in paths where path.hasSuffix(".rec") {
            total += (try? FileManager.default.attributesOfItem(atPath: folder + "/" + path)[.size] as? Int) ?? 0
            files += 1
        }
        return (total, files)
    }

    @Test func aTenantAndAQueuedEventTakeAFewKilobytes() throws {
        let world = try CGIWorld()
        try world.connectWithPixel()
        #expect(try world.run("send-event", "POST", "/api/connect/meta/events", body: LighttpdHost.lead("footprint-sent")).status == 200)
        let root = world.folder.path + "/store"
        let tenant = Self.bytes(under: root)
        try world.fault(.serverError, path: "2000101/events")
        let batch = (0..<100).map { "footprint-\($0)" }
        #expect(try world.run("send-event", "POST", "/api/connect/meta/events", body: LighttpdHost.batch(batch)).status == 202)
        let queued = Self.bytes(under: root + "/meta/outbox")
        let perEvent = queued.bytes / max(queued.files, 1)
        print(
            "storage footprint: a connected tenant with one delivered event \(tenant.bytes) bytes in \(tenant.files) records; a queued event \(perEvent) bytes"
        )
        #expect(queued.files == 100)
        // A queued event is one record: its claim was released and no state record stands for it
        // (the one state record is the delivered event's).
        #expect(Self.bytes(under: root + "/meta/sent").files == 1)
        #expect(tenant.bytes < 8 * 1024)
        #expect(perEvent < 2 * 1024)
    }
}
