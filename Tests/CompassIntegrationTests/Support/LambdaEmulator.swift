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

/// The Lambda Runtime API (2018-06-01) as AWS documents it, on loopback: invocations handed out
/// one at a time, their responses and errors written down.
final class LambdaEmulator: @unchecked Sendable {
    struct Outcome: Equatable {
        var kind: String
        var body: String
        /// Unix milliseconds when the answer came, and the deadline the invocation was given.
        var receivedAt: Int64 = 0
        var deadline: Int64 = 0
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        static func == (a: Outcome, b: Outcome) -> Bool { a.kind == b.kind && a.body == b.body }
    }
    /// Shared with the server's threads, which may outlive the emulator (a long poll pending).
    final class State: Sendable {
        let value = Mutex(
            (
                queue: [(id: String, event: String, seconds: Double)](), outcomes: [String: Outcome](), deadlines: [String: Int64](),
                initError: String?.none
            ))
        func withLock<T>(
            _ body: (
                inout (
                    queue: [(id: String, event: String, seconds: Double)], outcomes: [String: Outcome], deadlines: [String: Int64],
                    initError: String?
                )
            ) -> T
        ) -> T {
            value.withLock { body(&$0) }
        }
    }
    private let state = State()
    private(set) var server: LoopbackServer! = nil

    init() throws {
        let state = self.state
        server = try LoopbackServer { method, target, body in
            let prefix = "/2018-06-01/runtime"
            if method == "GET", target == prefix + "/invocation/next" {
                let deadline = Date().addingTimeInterval(30)
                while Date() < deadline {
                    if let next = state.withLock({ $0.queue.isEmpty ? nil : $0.queue.removeFirst() }) {
                        let deadline = LambdaEmulator.now + Int64(next.seconds * 1000)
                        state.withLock { $0.deadlines[next.id] = deadline }
                        return HTTPResponse(
                            status: 200,
                            headers: [
                                "Lambda-Runtime-Aws-Request-Id": next.id,
                                "Lambda-Runtime-Deadline-Ms": String(deadline),
                                "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                                "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:eu-west-1:000000000000:function:test",
                                "Content-Type": "application/json",
                            ], body: Array(next.event.utf8))
                    }
                    usleep(5_000)
                }
                return HTTPResponse(status: 500, body: [])
            }
            let text = String(decoding: body, as: UTF8.self)
            if method == "POST", target == prefix + "/init/error" {
                state.withLock { $0.initError = text }
                return HTTPResponse(status: 202, body: Array("{}".utf8))
            }
            let parts = target.dropFirst((prefix + "/invocation/").count).split(separator: "/")
            if method == "POST", target.hasPrefix(prefix + "/invocation/"), parts.count == 2 {
                let id = String(parts[0])
                state.withLock {
                    $0.outcomes[id] = Outcome(
                        kind: String(parts[1]), body: text, receivedAt: LambdaEmulator.now, deadline: $0.deadlines[id] ?? 0)
                }
                return HTTPResponse(status: 202, body: Array("{}".utf8))
            }
            return HTTPResponse(status: 404, body: [])
        }
    }

    var address: String { "127.0.0.1:\(server.port)" }
    /// Queues an invocation that has `seconds` to run (Lambda's function timeout).
    func invoke(_ id: String, _ event: String, seconds: Double = 30) { state.withLock { $0.queue.append((id, event, seconds)) } }
    static var now: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
    var initError: String? { state.withLock { $0.initError } }

    /// The outcome of each invocation, once all have one (or the wait ends).
    func outcome(_ id: String, seconds: Double = 30) -> Outcome? { outcomes([id], seconds: seconds)[id] }

    func outcomes(_ ids: [String], seconds: Double = 20) -> [String: Outcome] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let done = state.withLock { state in ids.allSatisfy { state.outcomes[$0] != nil } }
            if done { break }
            usleep(10_000)
        }
        return state.withLock { $0.outcomes }
    }
}
