import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// The built executables run exactly as a CGI host runs them: only CGI and configuration
/// variables (no PATH, no HOME), the body on stdin, the response read from stdout. Meta is the
/// Graph sandbox on a loopback port, reached with libcurl.
final class CGIWorld: @unchecked Sendable {
    let folder = TemporaryFolder()
    let sandbox: GraphSandbox
    let server: LoopbackServer
    let credentialsKey = Data(Crypto.randomBytes(32)).base64EncodedString()
    var extra: [String: String] = [:]

    init() throws {
        (sandbox, server) = try GraphSandbox.serve(folder: folder.path + "/sandbox")
    }

    deinit { server.stop() }

    var configuration: [String: String] {
        [
            "META_APP_ID": World.appId, "META_APP_SECRET": World.appSecret, "META_GRAPH_URL": server.baseURL,
            "META_DIALOG_URL": server.baseURL, "OAUTH_REDIRECT_BASE_URL": World.base,
            "COMPASS_JWT_SECRET": World.jwtSecret, "CREDENTIALS_KEY": credentialsKey,
            "STORE_URL": "file://\(folder.path)/store", "LOG_LEVEL": "debug",
        ].merging(extra) { _, new in new }
    }

    func token(_ tenant: String) -> String {
        SessionVerifier(secret: Array(World.jwtSecret.utf8)).mint(tenantId: tenant, expiresAt: Date().unixSeconds + 600)
    }

    struct Response {
        var status: Int
        var headers: [(String, String)]
        var body: String
        var raw: String
        var stderr: String
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    }

    func run(
        _ function: String, _ method: String, _ target: String, tenant: String? = "tenant_a", cookie: Bool = false,
        headers: [String: String] = [:], body: String = "", contentLength: String? = nil,
        environment override: [String: String?] = [:]
    ) throws -> Response {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var env = configuration
        env.merge([
            "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_METHOD": method,
            "REQUEST_URI": target, "SCRIPT_NAME": String(parts[0]), "QUERY_STRING": parts.count > 1 ? String(parts[1]) : "",
            "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "3000",
        ]) { _, new in new }
        if let tenant {
            if cookie {
                env["HTTP_COOKIE"] = "compass_session=\(token(tenant))"
            } else {
                env["HTTP_AUTHORIZATION"] = "Bearer \(token(tenant))"
            }
        }
        for (name, value) in headers { env["HTTP_" + name.uppercased().replacingOccurrences(of: "-", with: "_")] = value }
        if !body.isEmpty || contentLength != nil { env["CONTENT_LENGTH"] = contentLength ?? String(body.utf8.count) }
        if !body.isEmpty { env["CONTENT_TYPE"] = "application/json" }
        for (name, value) in override { env[name] = value }
        let result = try Executables.runCGI(function, environment: env, body: Array(body.utf8))
        return Self.parse(result)
    }

    static func parse(_ result: Executables.Result) -> Response {
        let text = result.text
        let split = text.components(separatedBy: "\r\n\r\n")
        let head = split[0].components(separatedBy: "\r\n")
        let headers = head.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmed)
        }
        let status = Int(headers.first { $0.0 == "Status" }?.1.prefix(3) ?? "") ?? 0
        return Response(
            status: status, headers: headers, body: split.dropFirst().joined(separator: "\r\n\r\n"),
            raw: text, stderr: result.stderr)
    }

    /// The world's credentials key, for records a test writes itself.
    var cipher: CredentialCipher {
        CredentialCipher(keys: try! CredentialKeys(current: credentialsKey, previous: nil), random: SecureRandom())
    }

    /// A dead-lettered event of `tenant` in the world's file store, as the drain leaves one.
    func storeDeadLetter(_ eventId: String, tenant: String = "tenant_a") throws {
        let payload: JSONValue = .object([
            "event_id": .string(eventId), "event_name": "Lead", "event_time": .int(Date().unixSeconds - 60),
            "action_source": "system_generated", "user_data": .object(["external_id": .string(Hex.encode(Crypto.sha256(eventId)))]),
        ])
        let event = NormalizedEvent(
            eventId: eventId, eventName: "Lead", eventTime: Date().unixSeconds - 60, actionSource: "system_generated",
            payload: payload, matchKeys: ["external_id"], warnings: [])
        var entry = OutboxEntry(event, tenantId: tenant, now: Date(), error: "test", cipher: cipher)
        entry.deadReason = "max_attempts"
        try RecordStore(store: try FileStore(root: folder.path + "/store")).save(entry, at: RecordKey.dead(tenant, event.dedupKey))
    }

    /// The event ids the sandbox took for `pixel`, in order.
    func deliveredEventIds(pixel: String = "2000101") throws -> [String] {
        let answer = try CurlTransport().send(HTTPRequest(method: "GET", url: server.baseURL + "/sandbox/events?pixel=\(pixel)"))
        let events = try JSONParser.parse(answer.body)["events"]?.array ?? []
        return events.compactMap { $0["event"]?["event_id"]?.string }
    }

    /// connect, approve in the sandbox dialog (over HTTP), and the callback query Meta sends.
    func approvedCallbackQuery(tenant: String = "tenant_a") throws -> String {
        let connect = try run("connect", "GET", "/api/connect/meta", tenant: tenant, cookie: true)
        let dialog = try #require(connect.header("Location"))
        let answer = try CurlTransport().send(HTTPRequest(method: "GET", url: dialog + "&sandbox_action=approve"))
        let back = try #require(answer.headers["location"])
        return String(back.split(separator: "?", maxSplits: 1)[1])
    }

    /// A world whose tenant_a is connected with a pixel chosen.
    static func connected() throws -> CGIWorld {
        let world = try CGIWorld()
        try world.connectWithPixel()
        return world
    }

    /// tenant_a connected through the callback, with ad account act_1000001 and pixel 2000101
    /// chosen; the answer to the choice.
    @discardableResult
    func connectWithPixel() throws -> Response {
        _ = try run("callback", "GET", "/api/connect/meta/callback?" + approvedCallbackQuery(), cookie: true)
        return try run("settings", "PUT", "/api/connect/meta/settings", body: #"{"adAccountId":"act_1000001","pixelId":"2000101"}"#)
    }

    /// The sandbox fails the next `remaining` calls to `path`.
    func fault(_ kind: GraphSandbox.Fault.Kind, path: String, remaining: Int = 1, delay: Int? = nil) throws {
        let fault = GraphSandbox.Fault(kind: kind, path: path, remaining: remaining, delayMilliseconds: delay)
        let response = try CurlTransport().send(
            HTTPRequest(method: "POST", url: server.baseURL + "/sandbox/faults", body: JSON.encode(fault)))
        #expect(response.status == 201)
    }

    /// The sandbox answers every call again.
    func clearFaults() throws {
        _ = try CurlTransport().send(HTTPRequest(method: "DELETE", url: server.baseURL + "/sandbox/faults"))
    }
}
