import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A value in a log line. There is deliberately no case for arbitrary objects: what is logged
/// is chosen field by field, and every string passes through the redactor.
package enum LogValue: Encodable, Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case strings([String])

    package init(stringLiteral value: String) { self = .string(value) }
    package init(integerLiteral value: Int) { self = .int(value) }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value.isFinite ? value : 0)
        case .bool(let value): try container.encode(value)
        case .strings(let value): try container.encode(value)
        }
    }
}

/// One JSON object per line on stderr: time, level, function, tenant, event and fields.
/// Secrets registered with `redact(_:)` (tokens, app secret, session keys) are replaced wherever
/// they appear, and credential-bearing URL parameters are cut out of any string.
package final class Logger: Sendable {
    package typealias Sink = @Sendable (String) -> Void

    package let function: String
    package let minimumLevel: LogLevel
    private let sink: Sink
    private let state = Mutex(State())

    private struct State {
        var secrets: [String] = []
        var tenant: String?
    }

    package init(function: String, level: LogLevel, sink: @escaping Sink = Logger.standardError) {
        self.function = function
        self.minimumLevel = level
        self.sink = sink
    }

    package static let standardError: Sink = { line in
        Descriptor.writeAll(2, Array(line.utf8) + [10])
    }

    /// Never let this value reach a log line. Short values are ignored: they would redact noise.
    package func redact(_ secret: String) {
        guard secret.utf8.count >= 8 else { return }
        state.withLock { if !$0.secrets.contains(secret) { $0.secrets.append(secret) } }
    }

    package func setTenant(_ tenant: String?) { state.withLock { $0.tenant = tenant } }

    package func debug(_ event: String, _ fields: [String: LogValue] = [:]) { log(.debug, event, fields) }
    package func info(_ event: String, _ fields: [String: LogValue] = [:]) { log(.info, event, fields) }
    package func warn(_ event: String, _ fields: [String: LogValue] = [:]) { log(.warn, event, fields) }
    package func error(_ event: String, _ fields: [String: LogValue] = [:]) { log(.error, event, fields) }

    package func log(_ level: LogLevel, _ event: String, _ fields: [String: LogValue]) {
        guard level >= minimumLevel else { return }
        let (secrets, tenant) = state.withLock { ($0.secrets, $0.tenant) }
        var line: [String: LogValue] = [:]
        for (key, value) in fields { line[key] = Self.scrub(value, secrets: secrets) }
        line["time"] = .string(Self.timestamp())
        line["level"] = .string(["debug", "info", "warn", "error"][level.rawValue])
        line["function"] = .string(function)
        line["event"] = .string(event)
        if let tenant { line["tenant"] = .string(tenant) }
        sink(Self.render(line))
    }

    /// One JSON object, keys sorted, written by hand: a log line costs no encoder set-up.
    package static func render(_ line: [String: LogValue]) -> String {
        var out = "{"
        for (index, key) in line.keys.sorted().enumerated() {
            if index > 0 { out += "," }
            out += JSONText.quoted(key) + ":"
            switch line[key]! {
            case .string(let value): out += JSONText.quoted(value)
            case .int(let value): out += String(value)
            case .double(let value): out += value.isFinite ? String(value) : "0"
            case .bool(let value): out += value ? "true" : "false"
            case .strings(let values): out += "[" + values.map(JSONText.quoted).joined(separator: ",") + "]"
            }
        }
        return out + "}"
    }

    /// UTC, RFC 3339 with milliseconds.
    package static func timestamp() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var parts = tm()
        var seconds = spec.tv_sec
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(spec.tv_nsec / 1_000_000), 3))Z"
    }

    private static func scrub(_ value: LogValue, secrets: [String]) -> LogValue {
        switch value {
        case .string(let text): .string(scrub(text, secrets: secrets))
        case .strings(let texts): .strings(texts.map { scrub($0, secrets: secrets) })
        default: value
        }
    }

    package static let sensitiveParameters = [
        "access_token", "client_secret", "fb_exchange_token", "input_token",
        "appsecret_proof", "code", "signed_request", "state",
    ]

    package static func scrub(_ text: String, secrets: [String]) -> String {
        var result = text
        for secret in secrets where result.contains(secret) {
            result = result.replacing(secret, with: "[redacted]")
        }
        for name in sensitiveParameters where result.contains(name + "=") {
            result = redactParameter(name, in: result)
        }
        return result
    }

    /// `...name=VALUE&...` becomes `...name=[redacted]&...`, for every occurrence.
    private static func redactParameter(_ name: String, in text: String) -> String {
        var output = ""
        var rest = Substring(text)
        let marker = name + "="
        while let range = rest.firstRange(of: marker) {
            let before = range.lowerBound == rest.startIndex ? nil : rest[rest.index(before: range.lowerBound)]
            output += rest[..<range.upperBound]
            rest = rest[range.upperBound...]
            // Only a parameter boundary counts: `?code=` or `&code=`, not `zipcode=`.
            guard before == nil || "?&; \"'".contains(before!) else { continue }
            let end = rest.firstIndex(where: { "& \"'\n,;".contains($0) }) ?? rest.endIndex
            if end != rest.startIndex { output += "[redacted]" }
            rest = rest[end...]
        }
        return output + rest
    }
}
