import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct CurlTransportTests {
    @Test func enforcesTheResponseSizeCap() throws {
        let server = try LoopbackServer { _, _, _ in HTTPResponse(status: 200, body: [UInt8](repeating: 65, count: 200_000)) }
        defer { server.stop() }
        var request = HTTPRequest(method: "GET", url: server.baseURL + "/big")
        request.maxResponseBytes = 100_000
        #expect(throws: HTTPFailure.tooLarge) { try CurlTransport().send(request) }
        request.maxResponseBytes = 300_000
        #expect(try CurlTransport().send(request).body.count == 200_000)
    }

    @Test func sendsMethodHeadersAndBody() throws {
        let seen = LogCapture()
        let server = try LoopbackServer { method, target, body in
            seen.logger().info("\(method) \(target) \(String(decoding: body, as: UTF8.self))")
            return HTTPResponse(status: 201, headers: ["X-Fb-Trace-Id": "abc"], body: Array("ok".utf8))
        }
        defer { server.stop() }
        let response = try CurlTransport().send(HTTPRequest(method: "POST", url: server.baseURL + "/x?y=1", body: Array("hello".utf8)))
        #expect(response.status == 201)
        #expect(response.headers["x-fb-trace-id"] == "abc")
        #expect(response.body == Array("ok".utf8))
        #expect(seen.text.contains("POST /x?y=1 hello"))
    }

    @Test func aRefusedConnectionIsAConnectFailure() {
        #expect {
            try CurlTransport().send(HTTPRequest(method: "GET", url: "http://127.0.0.1:9/", timeoutMilliseconds: 1000))
        } throws: { error in
            if case .connect = error as? HTTPFailure { return true }
            return false
        }
    }

    @Test func refusesProtocolsOtherThanHTTP() {
        #expect(throws: HTTPFailure.self) { try CurlTransport().send(HTTPRequest(method: "GET", url: "file:///etc/passwd")) }
    }
}
