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

@Suite struct FastCGIProtocolTests {
    @Test func nameValuePairsRoundTripWithShortAndLongLengths() throws {
        let long = String(repeating: "v", count: 300)
        let pairs = [("A", "1"), ("EMPTY", ""), (String(repeating: "N", count: 200), long)]
        let decoded = try FastCGI.decodePairs(FastCGI.encodePairs(pairs))
        #expect(decoded.map(\.0) == pairs.map(\.0) && decoded.map(\.1) == pairs.map(\.1))
        #expect(throws: FastCGI.Failure.self) { try FastCGI.decodePairs([5, 1, 65]) }
        #expect(throws: FastCGI.Failure.self) { try FastCGI.decodePairs([0x80, 0, 0]) }
        #expect(throws: FastCGI.Failure.self) { try FastCGI.decodePairs([0xff, 0xff, 0xff, 0xff, 1, 65]) }
    }

    @Test func recordsAreReadWhateverTheChunksTheyArriveIn() throws {
        let bytes = FastCGI.encode(.params, requestId: 7, Array(repeating: 1, count: 70_000)) + FastCGI.encode(.stdin, requestId: 7, [])
        for chunk in [1, 3, 8, 1000, bytes.count] {
            var reader = FastCGI.RecordReader()
            var records: [FastCGI.Record] = []
            var offset = 0
            while offset < bytes.count {
                reader.append(bytes[offset..<min(offset + chunk, bytes.count)])
                offset += chunk
                while let record = try reader.next() { records.append(record) }
            }
            #expect(records.map(\.content.count) == [65_535, 4_465, 0], "chunks of \(chunk)")
            #expect(records.allSatisfy { $0.requestId == 7 })
        }
        var wrong = FastCGI.RecordReader()
        wrong.append([2, 1, 0, 1, 0, 0, 0, 0])
        #expect(throws: FastCGI.Failure.self) { try wrong.next() }
    }

    /// Past the limit the body is counted, and what is kept is its beginning, in order: a later
    /// small record never lands after a skipped large one.
    @Test func aBodyPastTheLimitKeepsItsFirstBytesInOrder() throws {
        var request = try FastCGIRequestBuilder(
            begin: FastCGI.Record(type: 1, requestId: 1, content: [0, 1, 0, 0, 0, 0, 0, 0]),
            maxBody: 100)
        try request.add(FastCGI.Record(type: 4, requestId: 1, content: FastCGI.encodePairs([("CONTENT_LENGTH", "150")])))
        try request.add(FastCGI.Record(type: 4, requestId: 1, content: []))
        for (byte, count) in [(UInt8(1), 60), (2, 60), (3, 30)] {
            try request.add(FastCGI.Record(type: 5, requestId: 1, content: [UInt8](repeating: byte, count: count)))
        }
        try request.add(FastCGI.Record(type: 5, requestId: 1, content: []))
        #expect(request.complete && request.bodyBytes == 150)
        #expect(request.body == [UInt8](repeating: 1, count: 60) + [UInt8](repeating: 2, count: 41))
    }
}

/// The same executables kept warm by a FastCGI process manager: many requests, one process.
@Suite(.serialized) struct FastCGIHostTests {
    func start(_ name: String, _ world: CGIWorld, extra: [String: String] = [:]) throws -> FastCGIProcess {
        let process = try FastCGIProcess(name, environment: world.configuration.merging(extra) { _, new in new }, folder: world.folder.path)
        return process
    }

    func params(_ world: CGIWorld, _ method: String, _ path: String, tenant: String?, query: String = "") -> [String: String] {
        var params = [
            "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_METHOD": method,
            "SCRIPT_NAME": path, "REQUEST_URI": path + (query.isEmpty ? "" : "?" + query), "QUERY_STRING": query,
            "REMOTE_ADDR": "127.0.0.1",
        ]
        if let tenant { params["HTTP_AUTHORIZATION"] = "Bearer " + world.token(tenant) }
        return params
    }

    func connectedWorld() throws -> CGIWorld {
        let world = try CGIWorld()
        _ = try world.run("callback", "GET", "/api/connect/meta/callback?" + world.approvedCallbackQuery(), cookie: true)
        return world
    }

    @Test func twoTenantsInterleavedOnOneProcessEachSeeOnlyTheirOwn() throws {
        let world = try connectedWorld()
        let settings = try start("settings", world)
        let tokenA = params(world, "GET", "/api/connect/meta/settings", tenant: "tenant_a")
        let tokenB = params(world, "GET", "/api/connect/meta/settings", tenant: "tenant_b")
        for round in 0..<500 {
            let a = try settings.request(tokenA)
            let b = try settings.request(tokenB, keep: round % 7 != 0)
            #expect(a.status == 200 && a.json["status"] as? String == "connected", "round \(round): \(a.body.prefix(200))")
            #expect(b.status == 404 && b.errorCode == "not_connected", "round \(round): \(b.body.prefix(200))")
            if a.status != 200 || b.status != 404 { break }
        }
        #expect(settings.isRunning)
        // Each request's log line names its own tenant.
        let log = (try? String(contentsOfFile: world.folder.path + "/fcgi-stderr.log", encoding: .utf8)) ?? ""
        let lines = log.split(separator: "\n").filter { $0.contains(#""event":"request""#) }
        #expect(lines.count == 1000)
        #expect(lines.filter { $0.contains(#""tenant":"tenant_a""#) }.count == 500)
        #expect(lines.filter { $0.contains(#""tenant":"tenant_b""#) }.count == 500)
    }

    @Test func aFailingRequestDoesNotEndTheProcess() throws {
        let world = try connectedWorld()
        let settings = try start("settings", world)
        var put = params(world, "PUT", "/api/connect/meta/settings", tenant: "tenant_a")
        put["CONTENT_TYPE"] = "application/json"
        #expect(try settings.request(put, body: Array("{not json".utf8)).status == 400)
        var forged = params(world, "GET", "/api/connect/meta/settings", tenant: nil)
        forged["HTTP_AUTHORIZATION"] = "Bearer forged.token.here"
        #expect(try settings.request(forged).status == 401)
        #expect(try settings.request(params(world, "PATCH", "/api/connect/meta/settings", tenant: "tenant_a")).status == 405)
        #expect(try settings.request(put, body: Array(repeating: 32, count: 70_000)).status == 413)
        // A connection sending garbage is closed; the process serves the next one.
        try settings.send([9, 9, 9, 9, 9, 9, 9, 9])
        settings.disconnect()
        #expect(try settings.request(params(world, "GET", "/api/connect/meta/settings", tenant: "tenant_a")).status == 200)
        #expect(settings.isRunning)
    }

    @Test func memoryStaysFlatOverManyRequests() throws {
        let world = try CGIWorld()
        let connect = try start("connect", world)
        // No session: the route answers 401 without touching the store, the cheapest full request.
        let request = params(world, "GET", "/api/connect/meta", tenant: nil)
        for _ in 0..<5_000 { _ = try connect.request(request) }
        let warm = connect.residentKilobytes
        var statuses: Set<Int> = []
        for _ in 0..<100_000 { statuses.insert(try connect.request(request).status) }
        let after = connect.residentKilobytes
        #expect(statuses == [401])
        #expect(warm > 0 && after - warm < 4_096, "resident memory went from \(warm) KB to \(after) KB over 100,000 requests")
    }

    @Test func sigtermLetsTheRequestInFlightFinish() throws {
        let world = try connectedWorld()
        let settings = try start("settings", world)
        #expect(try settings.request(params(world, "GET", "/api/connect/meta/settings", tenant: "tenant_a")).status == 200)
        // A request half sent (PARAMS, no end of STDIN) when SIGTERM arrives.
        let id: UInt16 = 9_000
        try settings.send(
            FastCGI.encode(.beginRequest, requestId: id, [0, 1, 1, 0, 0, 0, 0, 0])
                + FastCGI.encode(
                    .params, requestId: id,
                    FastCGI.encodePairs(params(world, "GET", "/api/connect/meta/settings", tenant: "tenant_a").map { ($0.key, $0.value) }))
                + FastCGI.encode(.params, requestId: id, []))
        // The process has the request's records before the signal, however slow the machine.
        settings.waitUntilRead()
        kill(settings.pid, SIGTERM)
        usleep(100_000)
        try settings.send(FastCGI.encode(.stdin, requestId: id, []))
        let answer = CGIWorld.parse(.init(status: 0, stdout: try settings.readAnswer(id).stdout, stderr: ""))
        #expect(answer.status == 200, "the request in flight was cut off")
        settings.disconnect()
        #expect(settings.waitForExit(seconds: 10) == 0)
    }

    @Test func maxRequestsRecyclesTheProcess() throws {
        let world = try CGIWorld()
        let connect = try start("connect", world, extra: ["MAX_REQUESTS": "3"])
        for _ in 0..<3 { #expect(try connect.request(params(world, "GET", "/api/connect/meta", tenant: nil), keep: false).status == 401) }
        #expect(connect.waitForExit(seconds: 10) == 0)
    }

    @Test func managementRecordsAndOneRequestAtATime() throws {
        let world = try CGIWorld()
        let connect = try start("connect", world)
        try connect.send(FastCGI.encode(.getValues, requestId: 0, FastCGI.encodePairs([("FCGI_MPXS_CONNS", ""), ("FCGI_MAX_REQS", "")])))
        let fd = try connect.connect()
        var reader = FastCGI.RecordReader()
        var buffer = [UInt8](repeating: 0, count: 4096)
        var values: FastCGI.Record?
        while values == nil {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            guard count > 0 else { break }
            reader.append(buffer[0..<count])
            values = try reader.next()
        }
        #expect(values?.type == FastCGI.RecordType.getValuesResult.rawValue)
        let pairs = Dictionary(try FastCGI.decodePairs(values?.content ?? []), uniquingKeysWith: { a, _ in a })
        #expect(pairs == ["FCGI_MPXS_CONNS": "0", "FCGI_MAX_REQS": "1"])
        // A second request on the connection while the first is open is refused, the first served.
        try connect.send(
            FastCGI.encode(.beginRequest, requestId: 1, [0, 1, 1, 0, 0, 0, 0, 0])
                + FastCGI.encode(.beginRequest, requestId: 2, [0, 1, 1, 0, 0, 0, 0, 0]))
        let refused = try connect.readAnswer(2)
        #expect(refused.records.last?.content[4] == FastCGI.ProtocolStatus.cantMultiplexConnections.rawValue)
        try connect.send(
            FastCGI.encode(
                .params, requestId: 1,
                FastCGI.encodePairs(params(world, "GET", "/api/connect/meta", tenant: nil).map { ($0.key, $0.value) }))
                + FastCGI.encode(.params, requestId: 1, []) + FastCGI.encode(.stdin, requestId: 1, []))
        #expect(CGIWorld.parse(.init(status: 0, stdout: try connect.readAnswer(1).stdout, stderr: "")).status == 401)
    }
}

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
