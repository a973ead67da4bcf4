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

/// No peer holds a responder (issue 28): a request must arrive whole within the limit, an answer
/// must be read within it, and SIGTERM is honoured while a peer does not read.
@Suite(.serialized) struct FastCGIStallTests {
    let host = FastCGIHostTests()

    /// A connection to the process of `process`, as a slow or stalled web server holds one.
    func rawConnection(_ process: FastCGIProcess) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = FastCGIProcess.address(process.socketPath)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        return fd
    }

    /// Sends `bytes` one at a time, `interval` apart, until the peer closes the connection or
    /// `seconds` pass; the seconds it took the peer to close it (nil when it never did).
    func trickle(_ bytes: [UInt8], on fd: Int32, interval: useconds_t, seconds: Double) -> Double? {
        let started = Date()
        for byte in bytes where Date().timeIntervalSince(started) < seconds {
            var one = byte
            if send(fd, &one, 1, Int32(MSG_NOSIGNAL)) != 1 { return Date().timeIntervalSince(started) }
            usleep(interval)
        }
        return nil
    }

    func slowClientCheck(_ world: CGIWorld, bytes: (FastCGIHostTests, CGIWorld) -> [UInt8]) throws {
        let settings = try host.start("settings", world, extra: ["FASTCGI_REQUEST_SECONDS": "2"])
        let tenant = host.params(world, "GET", "/api/connect/meta/settings", tenant: "tenant_a")
        #expect(try settings.request(tenant, keep: false).status == 200)
        let slow = try rawConnection(settings)
        defer { close(slow) }
        let droppedAfter = Mutex<Double?>(nil)
        let done = DispatchSemaphore(value: 0)
        let trickled = bytes(host, world)
        DispatchQueue.global().async {
            droppedAfter.withLock { $0 = trickle(trickled, on: slow, interval: 200_000, seconds: 8) }
            done.signal()
        }
        usleep(300_000)
        // The only responder is held by the slow client until its limit: the tenant's request,
        // queued behind it, is answered soon after, not after 30 s or never.
        let started = Date()
        let answer = try settings.request(tenant, keep: false)
        let waited = Date().timeIntervalSince(started)
        #expect(answer.status == 200)
        #expect(waited < 4, "the tenant waited \(waited) s behind a slow client")
        done.wait()
        let after = droppedAfter.withLock { $0 }
        #expect(after != nil && after! < 4, "the slow client was \(after.map { "dropped after \($0) s" } ?? "never dropped")")
    }

    @Test func aClientSendingItsParamsSlowlyIsDroppedAtTheLimit() throws {
        let world = try FastCGIHostTests().connectedWorld()
        try slowClientCheck(world) { host, world in
            let id: UInt16 = 7
            return FastCGI.encode(.beginRequest, requestId: id, [0, 1, 0, 0, 0, 0, 0, 0])
                + FastCGI.encode(
                    .params, requestId: id,
                    FastCGI.encodePairs(
                        host.params(world, "GET", "/api/connect/meta/settings", tenant: "tenant_b").sorted { $0.key < $1.key }))
        }
    }

    @Test func aClientSendingItsBodySlowlyIsDroppedAtTheLimit() throws {
        let world = try FastCGIHostTests().connectedWorld()
        try slowClientCheck(world) { host, world in
            let id: UInt16 = 8
            let body = Array(#"{"testEventCode":"SLOW"}"#.utf8)
            var params = host.params(world, "PUT", "/api/connect/meta/settings", tenant: "tenant_b")
            params["CONTENT_LENGTH"] = String(body.count * 20)
            params["CONTENT_TYPE"] = "application/json"
            let head =
                FastCGI.encode(.beginRequest, requestId: id, [0, 1, 0, 0, 0, 0, 0, 0])
                + FastCGI.encode(.params, requestId: id, FastCGI.encodePairs(params.sorted { $0.key < $1.key }))
                + FastCGI.encode(.params, requestId: id, [])
            // The head at once (as a web server sends it), then the body a byte at a time.
            return head + (0..<20).flatMap { _ in FastCGI.encode(.stdin, requestId: id, body) }
        }
    }

    /// A request whose answer is never read: given up at the limit (the next request is
    /// served), and SIGTERM ends the process while it waits for such a reader.
    @Test func aClientThatNeverReadsIsDroppedAndSigtermIsHonoured() throws {
        let world = try FastCGIHostTests().connectedWorld()
        #expect(
            try world.run("settings", "PUT", "/api/connect/meta/settings", body: #"{"adAccountId":"act_1000001","pixelId":"2000101"}"#)
                .status == 200)
        let events = (0..<3000).map {
            #"{"eventName":"Lead","eventTime":\#(Date().unixSeconds - 60),"actionSource":"system_generated","eventId":"n\#($0)","userData":{"em":"reader\#($0)@example.com","external_id":"u-\#($0)"}}"#
        }
        let body = Array(#"{"events":[\#(events.joined(separator: ","))]}"#.utf8)
        func flood(_ process: FastCGIProcess) throws -> Int32 {
            let fd = try rawConnection(process)
            let id: UInt16 = 3
            var params = host.params(world, "POST", "/api/connect/meta/events", tenant: "tenant_a", query: "dryRun=1")
            params["CONTENT_LENGTH"] = String(body.count)
            params["CONTENT_TYPE"] = "application/json"
            var bytes =
                FastCGI.encode(.beginRequest, requestId: id, [0, 1, 0, 0, 0, 0, 0, 0])
                + FastCGI.encode(.params, requestId: id, FastCGI.encodePairs(params.sorted { $0.key < $1.key }))
                + FastCGI.encode(.params, requestId: id, [])
            for start in stride(from: 0, to: body.count, by: 60_000) {
                bytes += FastCGI.encode(.stdin, requestId: id, Array(body[start..<min(start + 60_000, body.count)]))
            }
            bytes += FastCGI.encode(.stdin, requestId: id, [])
            let sent = bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                    guard written > 0 else { return false }
                    offset += written
                }
                return true
            }
            #expect(sent)
            return fd
        }
        let events1 = try host.start("send-event", world, extra: ["FASTCGI_REQUEST_SECONDS": "2"])
        let stalled = try flood(events1)
        defer { close(stalled) }
        usleep(500_000)
        let started = Date()
        var small = host.params(world, "POST", "/api/connect/meta/events", tenant: "tenant_a", query: "dryRun=1")
        small["CONTENT_TYPE"] = "application/json"
        let answer = try events1.request(
            small,
            body: Array(
                #"{"eventName":"Lead","eventTime":\#(Date().unixSeconds - 60),"actionSource":"system_generated","eventId":"x","userData":{"em":"a@b.co"}}"#
                    .utf8),
            keep: false)
        #expect(answer.status == 200, "\(answer.raw.prefix(300))")
        #expect(Date().timeIntervalSince(started) < 5, "the next request waited \(Date().timeIntervalSince(started)) s")

        // SIGTERM while the process waits for a reader that never reads: it ends, not after 30 s.
        let events2 = try host.start("send-event", world, extra: ["FASTCGI_REQUEST_SECONDS": "30"])
        let stalledAgain = try flood(events2)
        defer { close(stalledAgain) }
        usleep(1_000_000)
        kill(events2.pid, SIGTERM)
        #expect(events2.waitForExit(seconds: 3) != nil, "SIGTERM was not honoured while a write blocked")
    }
}
