import Foundation
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

/// The store's disk full (ENOSPC), on a tiny tmpfs: 503, and nothing accepted is lost.
@Suite(.serialized) struct DiskFullTests {
    static var canMount: Bool { geteuid() == 0 }

    @Test(.enabled(if: canMount, "mounting a tmpfs needs root"))
    func aFullDiskRefusesNewEventsAndKeepsQueuedOnes() throws {
        let world = try CGIWorld()
        let mountPoint = world.folder.path + "/tiny"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        guard mount("tmpfs", mountPoint, "tmpfs", 0, "size=256k") == 0 else {
            Issue.record("tmpfs could not be mounted (errno \(errno))")
            return
        }
        defer { umount2(mountPoint, Int32(MNT_DETACH)) }
        world.extra["STORE_URL"] = "file://" + mountPoint + "/store"
        world.extra["CRON_SECRET"] = "cron-secret-0123456789"
        #expect(try world.connectWithPixel().status == 200)
        try world.fault(.serverError, path: "2000101/events")
        #expect(try world.run("send-event", "POST", "/api/connect/meta/events", body: LighttpdHost.lead("before-full")).status == 202)

        // Fill the disk.
        let filler = mountPoint + "/filler"
        let fd = open(filler, O_WRONLY | O_CREAT, 0o600)
        let block = [UInt8](repeating: 0, count: 4096)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        close(fd)

        try world.fault(.serverError, path: "2000101/events")
        let refused = try world.run("send-event", "POST", "/api/connect/meta/events", body: LighttpdHost.lead("during-full"))
        #expect(refused.status == 503)
        #expect(refused.errorCode == "store_unavailable")
        #expect(!refused.body.contains("errno"))
        // A write of the tenant's settings is refused the same way; connect, which writes
        // nothing (its state is signed), still answers its redirect.
        let settings = try world.run(
            "settings", "PUT", "/api/connect/meta/settings", body: #"{"testEventCode":"TEST123"}"#)
        #expect(settings.status == 503 && settings.errorCode == "store_unavailable", "\(settings.status) \(settings.body)")
        #expect(try world.run("connect", "GET", "/api/connect/meta", cookie: true).status == 302)

        // Space again: what was accepted is delivered; what was refused was never taken.
        unlink(filler)
        try world.clearFaults()
        _ = try Executables.runCGI("refresh-cron", environment: world.configuration.filter { Config.variables.contains($0.key) })
        #expect(try world.deliveredEventIds() == ["before-full"])
    }
}
