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

/// The whole flow through nginx: with fcgiwrap (CGI) and with the executables as FastCGI
/// processes, each from the configuration `HostSetup` generates from functions.json; the same
/// for Apache.
@Suite(.serialized) struct NginxEndToEndTests {
    func location(_ response: HTTPResponse) -> String { response.headers["location"] ?? "" }

    @Test(
        .enabled(if: NginxHost.available, "nginx or fcgiwrap is not installed (scripts/setup installs them)"),
        arguments: [false, true])
    func theWholeFlowThroughNginx(fastCGI: Bool) throws {
        try theWholeFlow(try NginxHost(fastCGI: fastCGI), fastCGI: fastCGI)
    }

    @Test(
        .enabled(if: NginxHost.apacheAvailable, "apache2 is not installed (scripts/setup installs it)"),
        arguments: [false, true])
    func theWholeFlowThroughApache(fastCGI: Bool) throws {
        try theWholeFlow(try NginxHost(fastCGI: fastCGI, server: .apache), fastCGI: fastCGI)
    }

    /// Through Apache's `mod_proxy_fcgi`, which streams a body to the responder as it comes: a
    /// client sending its body a byte at a time holds one responder, never the others, and only
    /// until the responder's limit (5 s here), not for Apache's timeout.
    @Test(.enabled(if: NginxHost.apacheAvailable, "apache2 is not installed (scripts/setup installs it)"))
    func aSlowBodyThroughApacheHoldsOneResponderAndOnlyUntilTheLimit() throws {
        let host = try NginxHost(fastCGI: true, server: .apache)
        let session =
            "Bearer " + SessionVerifier(secret: Array(World.jwtSecret.utf8)).mint(tenantId: "tenant_b", expiresAt: Date().unixSeconds + 600)
        func slowPut() throws -> Int32 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(host.port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
            let head =
                "PUT /api/connect/meta/settings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: \(session)\r\n"
                + "Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{"
            _ = Array(head.utf8).withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            return fd
        }
        let trickling = Atomic<Bool>(true)
        let slow = [try slowPut(), try slowPut()]
        defer { for fd in slow { close(fd) } }
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            var space: UInt8 = 32
            let started = Date()
            while trickling.load(ordering: .relaxed), Date().timeIntervalSince(started) < 20 {
                for fd in slow { _ = send(fd, &space, 1, Int32(MSG_NOSIGNAL)) }
                usleep(200_000)
            }
            done.signal()
        }
        defer {
            trickling.store(false, ordering: .relaxed)
            done.wait()
        }
        usleep(700_000)
        // Both responders of settings are held; a tenant's request is answered once the first
        // slow client is given up (5 s), well before Apache's own timeout.
        let start = Date()
        let answer = try host.send("GET", "/api/connect/meta/settings", headers: [("Authorization", session)])
        let waited = Date().timeIntervalSince(start)
        #expect(answer.status == 404, "\(answer.status)")
        #expect(waited < 8, "a tenant waited \(waited) s behind two slow bodies")
        // With a responder free, a tenant waits for nobody.
        usleep(500_000)
        let again = Date()
        #expect(try host.send("GET", "/api/connect/meta/settings", headers: [("Authorization", session)]).status == 404)
        #expect(Date().timeIntervalSince(again) < 1)
    }

    func theWholeFlow(_ host: NginxHost, fastCGI: Bool) throws {
        let token = SessionVerifier(secret: Array(World.jwtSecret.utf8)).mint(tenantId: "tenant_nginx", expiresAt: Date().unixSeconds + 600)
        let cookie = [("Cookie", "compass_session=" + token)]
        let bearer = [("Authorization", "Bearer " + token)]
        let connect = try host.send("GET", "/api/connect/meta", headers: cookie)
        #expect(connect.status == 302, "\(String(decoding: connect.body, as: UTF8.self)) \(host.log.suffix(1500))")
        let approved = try CurlTransport().send(HTTPRequest(method: "GET", url: location(connect) + "&sandbox_action=approve"))
        let back = location(approved)
        let query = String(back.split(separator: "?", maxSplits: 1).last ?? "")
        let callback = try host.send("GET", "/api/connect/meta/callback?" + query, headers: cookie)
        #expect(location(callback) == host.base + "/settings/integrations?connected=meta")
        #expect(try host.send("GET", "/api/connect/meta/settings?adAccountId=act_1000001", headers: bearer).status == 200)
        let put = try host.send(
            "PUT", "/api/connect/meta/settings", headers: cookie + [("Origin", host.base)],
            body: #"{"adAccountId":"act_1000001","pixelId":"2000101"}"#)
        #expect(put.status == 200, "\(String(decoding: put.body, as: UTF8.self))")
        let event = try host.send("POST", "/api/connect/meta/events", headers: bearer, body: LighttpdHost.lead("nginx-\(fastCGI)"))
        #expect(event.status == 200, "\(String(decoding: event.body, as: UTF8.self))")
        let delivered = try CurlTransport().send(HTTPRequest(method: "GET", url: host.server.baseURL + "/sandbox/events?pixel=2000101"))
        #expect(String(decoding: delivered.body, as: UTF8.self).contains("nginx-\(fastCGI)"))
        let cron = try host.send("POST", "/api/cron/meta/refresh", headers: [("Authorization", "Bearer cron-secret-for-tests-0123456789")])
        #expect(cron.status == 200, "\(String(decoding: cron.body, as: UTF8.self))")
        // nginx passes a chunked body on as a whole; a body to a GET-only route gets its JSON error.
        let chunked = try host.send(
            "POST", "/api/connect/meta/events", headers: bearer + [("Transfer-Encoding", "chunked")],
            body: LighttpdHost.lead("nginx-chunked-\(fastCGI)"))
        #expect(chunked.status == 200, "\(String(decoding: chunked.body, as: UTF8.self))")
        let big = try host.send("POST", "/api/connect/meta", headers: bearer, body: String(repeating: "x", count: 100_000))
        #expect(big.status == 405 && String(decoding: big.body, as: UTF8.self).contains("method_not_allowed"))
        let disconnect = try host.send("POST", "/api/connect/meta/disconnect", headers: cookie + [("Origin", host.base)])
        #expect(disconnect.status == 200)
        #expect(try host.send("GET", "/api/connect/meta/settings", headers: bearer).status == 404)
    }
}
