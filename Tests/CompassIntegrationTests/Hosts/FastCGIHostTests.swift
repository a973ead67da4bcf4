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

    /// Per-request state (README, Hosts): a request without a tenant, after a tenant's on the
    /// same process, has no tenant in its log lines.
    @Test func aTenantLessRequestAfterATenantsLogsNoTenant() throws {
        let world = try connectedWorld()
        let settings = try start("settings", world)
        #expect(try settings.request(params(world, "GET", "/api/connect/meta/settings", tenant: "tenant_a")).status == 200)
        #expect(try settings.request(params(world, "GET", "/api/connect/meta/settings", tenant: nil)).status == 401)
        let log = (try? String(contentsOfFile: world.folder.path + "/fcgi-stderr.log", encoding: .utf8)) ?? ""
        let lines = log.split(separator: "\n").filter { $0.contains(#""event":"request""#) }
        #expect(lines.count == 2, "\(log)")
        #expect(lines.first?.contains(#""tenant":"tenant_a""#) == true, "\(log)")
        #expect(lines.last?.contains(#""status":401"#) == true && lines.last?.contains("tenant") == false, "\(log)")
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
