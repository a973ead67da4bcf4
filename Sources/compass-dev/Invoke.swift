import CompassDev
import CompassPlatform
import Foundation

/// Runs a handler executable on a fixture: a raw HTTP request (request line, headers, blank
/// line, body). In the fixture, `{{session:TENANT}}` becomes a fresh session token, `{{now}}` the
/// current Unix time, `{{env:NAME}}` that environment variable and `{{signed_request:USER}}` a
/// signed_request for that Meta user, signed with META_APP_SECRET.
enum Invoke {
    /// Configuration passed through from the caller's environment; nothing else is.
    static let passThrough = DevTools.configVariables + ["SWIFT_BACKTRACE"]

    static func run(function: String, fixture: String) -> Int32 {
        guard let raw = FileManager.default.contents(atPath: fixture) else { fail("cannot read \(fixture)") }
        let parent = ProcessInfo.processInfo.environment
        let bytes = expandPlaceholders(Array(raw), secret: parent["COMPASS_JWT_SECRET"])
        guard let request = FixtureRequest(bytes) else { fail("\(fixture) is not a raw HTTP request") }
        var environment = request.cgiEnvironment
        for name in passThrough { if let value = parent[name] { environment[name] = value } }

        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent(function)
        guard FileManager.default.isExecutableFile(atPath: executable.path) else { fail("no executable \(executable.path)") }
        let process = Process()
        process.executableURL = executable
        process.environment = environment
        let input = Pipe()
        process.standardInput = input
        do { try process.run() } catch { fail("cannot run \(executable.path): \(error)") }
        input.fileHandleForWriting.write(Data(request.body))
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        return process.terminationStatus
    }

    static func expandPlaceholders(_ bytes: [UInt8], secret: String?) -> [UInt8] {
        var text = String(decoding: bytes, as: UTF8.self)
        while let start = text.range(of: "{{session:"), let end = text.range(of: "}}", range: start.upperBound..<text.endIndex) {
            let tenant = String(text[start.upperBound..<end.lowerBound])
            guard let secret else { fail("the fixture needs a session: set COMPASS_JWT_SECRET") }
            let token = DevTools.mintSession(tenantId: tenant, secret: secret, seconds: 3600) ?? "invalid-tenant"
            text.replaceSubrange(start.lowerBound..<end.upperBound, with: token)
        }
        text = text.replacingOccurrences(of: "{{now}}", with: String(Int(Date().timeIntervalSince1970)))
        while let start = text.range(of: "{{signed_request:"), let end = text.range(of: "}}", range: start.upperBound..<text.endIndex) {
            let user = String(text[start.upperBound..<end.lowerBound])
            let secret = ProcessInfo.processInfo.environment["META_APP_SECRET"] ?? ""
            text.replaceSubrange(start.lowerBound..<end.upperBound, with: DevTools.signedRequest(metaUserId: user, appSecret: secret))
        }
        while let start = text.range(of: "{{env:"), let end = text.range(of: "}}", range: start.upperBound..<text.endIndex) {
            let name = String(text[start.upperBound..<end.lowerBound])
            text.replaceSubrange(start.lowerBound..<end.upperBound, with: ProcessInfo.processInfo.environment[name] ?? "")
        }
        return Array(text.utf8)
    }
}

struct FixtureRequest {
    var method: String
    var target: String
    var headers: [(String, String)]
    var body: [UInt8]

    init?(_ bytes: [UInt8]) {
        // Headers end at the first blank line (CRLF or LF).
        var headerEnd = bytes.count
        var bodyStart = bytes.count
        for index in bytes.indices {
            if bytes[index...].starts(with: [13, 10, 13, 10]) {
                headerEnd = index
                bodyStart = index + 4
                break
            }
            if bytes[index...].starts(with: [10, 10]) {
                headerEnd = index
                bodyStart = index + 2
                break
            }
        }
        let head = String(decoding: bytes[..<headerEnd], as: UTF8.self)
        var lines = head.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" })
            .map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        guard !lines.isEmpty else { return nil }
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 2 else { return nil }
        method = String(requestLine[0])
        target = String(requestLine[1])
        headers = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        // The file's final newline is not part of the body.
        body = Array(bytes[bodyStart...])
        if body.last == 10 { body.removeLast() }
        if body.last == 13 { body.removeLast() }
    }

    var cgiEnvironment: [String: String] {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var environment = [
            "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_SOFTWARE": "compass-dev",
            "SERVER_NAME": "localhost", "SERVER_PORT": "3000", "REMOTE_ADDR": "127.0.0.1",
            "REQUEST_METHOD": method, "REQUEST_URI": target, "SCRIPT_NAME": String(parts[0]),
            "QUERY_STRING": parts.count > 1 ? String(parts[1]) : "",
        ]
        var hasLength = false
        for (name, value) in headers {
            switch name.lowercased() {
            case "content-type": environment["CONTENT_TYPE"] = value
            case "content-length":
                environment["CONTENT_LENGTH"] = value
                hasLength = true
            default: environment["HTTP_" + name.uppercased().replacingOccurrences(of: "-", with: "_")] = value
            }
        }
        if !hasLength && !body.isEmpty { environment["CONTENT_LENGTH"] = String(body.count) }
        return environment
    }
}
