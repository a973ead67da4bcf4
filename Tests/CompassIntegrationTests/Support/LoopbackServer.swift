import Foundation

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

/// A small HTTP/1.1 server on 127.0.0.1 that hands each request to a closure: it puts the
/// in-process Graph sandbox on the network so the built executables reach it with libcurl.
final class LoopbackServer: @unchecked Sendable {
    typealias Handler = @Sendable (_ method: String, _ target: String, _ body: [UInt8]) -> HTTPResponse
    /// A handler that sees the request's headers too (names lower-cased).
    typealias HeaderHandler = @Sendable (_ method: String, _ target: String, _ headers: [String: String], _ body: [UInt8]) -> HTTPResponse

    let port: Int
    private let listener: Int32
    private let handler: HeaderHandler

    convenience init(handler: @escaping Handler) throws {
        try self.init(headers: { method, target, _, body in handler(method, target, body) })
    }

    init(headers handler: @escaping HeaderHandler) throws {
        self.handler = handler
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        _ = self.port
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            Thread { [self] in serve(client) }.start()
        }
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        var buffer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        var headerEnd: Int? = nil
        while headerEnd == nil {
            let count = recv(client, &chunk, chunk.count, 0)
            if count <= 0 { return }
            buffer += chunk[0..<count]
            headerEnd = find([13, 10, 13, 10], in: buffer)
        }
        let head = String(decoding: buffer[..<headerEnd!], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let requestLine = lines[0].split(separator: " ")
        guard requestLine.count >= 2 else { return }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { headers[parts[0].lowercased()] = String(parts[1]).trimmed }
        }
        let length = headers["content-length"].flatMap { Int($0) } ?? 0
        var body = Array(buffer[(headerEnd! + 4)...])
        while body.count < length {
            let count = recv(client, &chunk, chunk.count, 0)
            if count <= 0 { return }
            body += chunk[0..<count]
        }
        let response = handler(String(requestLine[0]), String(requestLine[1]), headers, body)
        var text = "HTTP/1.1 \(response.status) \(CGIResponse.reason(response.status))\r\nConnection: close\r\n"
        for (name, value) in response.headers { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(response.body.count)\r\n\r\n"
        let bytes = Array(text.utf8) + response.body
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }
            offset += sent
        }
    }

    private func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count) where haystack[index..<(index + needle.count)].elementsEqual(needle) {
            return index
        }
        return nil
    }
}

extension GraphSandbox {
    /// Serves this sandbox over loopback HTTP; its `baseURL` must be the server's.
    static func serve(folder: String) throws -> (GraphSandbox, LoopbackServer) {
        let box = Box()
        let server = try LoopbackServer { method, target, body in
            let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            return box.sandbox!.handle(
                .init(
                    method: method, path: String(parts[0]),
                    query: QueryParameters(parsing: parts.count > 1 ? parts[1] : ""), body: body))
        }
        let sandbox = GraphSandbox(
            store: try FileStore(root: folder), appId: World.appId, appSecret: World.appSecret,
            baseURL: server.baseURL, clock: SystemClock(), random: SecureRandom())
        box.sandbox = sandbox
        return (sandbox, server)
    }

    private final class Box: @unchecked Sendable { var sandbox: GraphSandbox? }
}
