import CompassPlatform
import CompassStorage

/// What a Lambda invocation carries, turned into what the other hosts give a handler: an HTTP
/// event becomes the CGI meta-variables and body a CGI host would have passed (so the request
/// the handler sees is the same), and the handler's answer goes back in the event's own shape.
package enum LambdaEvent: Equatable {
    /// API Gateway HTTP API and function URLs (payload 2.0), REST APIs (1.0) and load balancers.
    package enum Shape: Equatable, Sendable {
        case httpV2
        case restV1(multiValue: Bool)
        case loadBalancer(multiValue: Bool)
    }

    case http(environment: [String: String], body: [UInt8], shape: Shape)
    /// An EventBridge schedule (`aws.events` or `aws.scheduler`, `Scheduled Event`).
    case schedule
    /// Anything else: an invocation error naming what was missing.
    case unknown(String)

    package static func parse(_ bytes: [UInt8]) -> LambdaEvent {
        let apart = bodyApart(bytes)
        guard let event = try? JSONParser.parse(apart?.event ?? bytes), event.object != nil else {
            return .unknown("the event is not a JSON object")
        }
        let body = apart.map { bytes[$0.body] }
        if let source = event["source"]?.string, ["aws.events", "aws.scheduler"].contains(source),
            event["detail-type"]?.string == "Scheduled Event"
        {
            return .schedule
        }
        if event["version"]?.string == "2.0", let http = event["requestContext"]?["http"], let method = http["method"]?.string {
            var headers: [(String, String)] = []
            for (name, value) in event["headers"]?.object ?? [:] { if let text = value.string { headers.append((name, text)) } }
            if let cookies = event["cookies"]?.array?.compactMap(\.string), !cookies.isEmpty {
                headers.removeAll { $0.0.lowercased() == "cookie" }
                headers.append(("cookie", cookies.joined(separator: "; ")))
            }
            return httpEvent(
                method: method, path: withoutStage(event["rawPath"]?.string ?? "/", stage: event["requestContext"]?["stage"]?.string),
                query: event["rawQueryString"]?.string ?? "",
                headers: headers, event: event, body: body, sourceIp: http["sourceIp"]?.string, shape: .httpV2)
        }
        if let method = event["httpMethod"]?.string {
            let multi = event["multiValueHeaders"]?.object != nil
            var headers: [(String, String)] = []
            if let values = event["multiValueHeaders"]?.object {
                for (name, list) in values { headers.append((name, (list.array ?? []).compactMap(\.string).joined(separator: ", "))) }
            } else {
                for (name, value) in event["headers"]?.object ?? [:] { if let text = value.string { headers.append((name, text)) } }
            }
            // API Gateway decodes the query's names and values; a load balancer passes them as
            // the client sent them, percent-encoded (AWS's "Lambda functions as targets"), so
            // they are decoded here first.
            let loadBalancer = event["requestContext"]?["elb"] != nil
            func plain(_ text: String) -> String { loadBalancer ? QueryParameters.decode(text) : text }
            var query = QueryParameters()
            if let values = event["multiValueQueryStringParameters"]?.object {
                for name in values.keys.sorted() {
                    for item in values[name]?.array ?? [] { if let text = item.string { query.append(plain(name), plain(text)) } }
                }
            } else {
                for name in (event["queryStringParameters"]?.object ?? [:]).keys.sorted() {
                    if let text = event["queryStringParameters"]?[name]?.string { query.append(plain(name), plain(text)) }
                }
            }
            return httpEvent(
                method: method, path: event["path"]?.string ?? "/", query: query.encoded, headers: headers, event: event, body: body,
                sourceIp: event["requestContext"]?["identity"]?["sourceIp"]?.string,
                shape: loadBalancer ? .loadBalancer(multiValue: multi) : .restV1(multiValue: multi))
        }
        return .unknown("neither an HTTP event (API Gateway, function URL, load balancer) nor an EventBridge schedule")
    }

    /// An HTTP API's `rawPath` begins with the stage's name unless the stage is `$default`
    /// (the SAM template's); the route is what follows it.
    static func withoutStage(_ path: String, stage: String?) -> String {
        guard let stage, stage != "$default", !stage.isEmpty else { return path }
        if path == "/" + stage { return "/" }
        return path.hasPrefix("/" + stage + "/") ? String(path.dropFirst(stage.count + 1)) : path
    }

    /// The request as a host that mounts the function at `routes` passes it: `SCRIPT_NAME` the
    /// route the path names and `PATH_INFO` what lies beyond it (for a function that serves
    /// subpaths); nil for a path outside its routes, which is answered 404 as under CGI.
    package static func mounted(_ environment: [String: String], at routes: [String], subpaths: Bool) -> [String: String]? {
        let uri = environment["REQUEST_URI"] ?? "/"
        let path = CGIRequest.normalizedPath(QueryParameters.decodePath(uri.prefix { $0 != "?" }))
        var mounted = environment
        if routes.contains(path) {
            mounted["SCRIPT_NAME"] = path
            mounted["PATH_INFO"] = ""
            return mounted
        }
        guard subpaths, let route = routes.first(where: { path.hasPrefix($0 == "/" ? "/" : $0 + "/") }) else { return nil }
        mounted["SCRIPT_NAME"] = route == "/" ? "" : route
        mounted["PATH_INFO"] = route == "/" ? path : String(path.dropFirst(route.count))
        return mounted
    }

    /// The event with its `body` string as `null`, and where that string's text lies in `bytes`,
    /// when a tape takes the event (no escape anywhere: the text is then the bytes between the
    /// quotes); nil to parse the event whole. A dry run's body is a megabyte: read from its bytes,
    /// it is neither made a String nor scanned twice.
    private static func bodyApart(_ bytes: [UInt8]) -> (event: [UInt8], body: Range<Int>)? {
        guard let tape = JSONTape(bytes), tape.tokens.first?.kind == .object else { return nil }
        for (name, value) in tape.members(of: 0) where tape.isString(name, "body") {
            let token = tape.tokens[value]
            guard token.kind == .string else { return nil }
            let text = Int(token.start)..<Int(token.end)
            var event: [UInt8] = []
            event.reserveCapacity(bytes.count - text.count + 2)
            event.append(contentsOf: bytes[..<(text.lowerBound - 1)])
            event.append(contentsOf: "null".utf8)
            event.append(contentsOf: bytes[(text.upperBound + 1)...])
            return (event, text)
        }
        return nil
    }

    /// `body`: the body's text when `bodyApart` took it out of `event`.
    private static func httpEvent(
        method: String, path: String, query: String, headers: [(String, String)], event: JSONValue, body text: ArraySlice<UInt8>?,
        sourceIp: String?, shape: Shape
    ) -> LambdaEvent {
        var body: [UInt8] = []
        if let text = text ?? event["body"]?.string.map({ ArraySlice($0.utf8) }) {
            if event["isBase64Encoded"]?.bool == true {
                guard let decoded = Base64Bytes.decode(text) else { return .unknown("the body is marked base64 but is not") }
                body = decoded
            } else {
                body = Array(text)
            }
        }
        var environment = [
            "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method.uppercased(),
            "REQUEST_URI": path + (query.isEmpty ? "" : "?" + query), "QUERY_STRING": query,
            "CONTENT_LENGTH": String(body.count), "SERVER_PROTOCOL": "HTTP/1.1",
        ]
        if let sourceIp { environment["REMOTE_ADDR"] = sourceIp }
        for (name, value) in headers {
            let lower = name.lowercased()
            guard lower.utf8.allSatisfy({ ASCII.isAlphanumeric($0) || $0 == 45 }) else { continue }
            if lower == "content-type" {
                environment["CONTENT_TYPE"] = value
                continue
            }
            if lower == "content-length" { continue }
            environment["HTTP_" + lower.uppercased().replacing("-", with: "_")] = value
        }
        return .http(environment: environment, body: body, shape: shape)
    }

    /// The answer in the event's shape: text bodies as text, others base64; `Set-Cookie` in
    /// `cookies` (2.0) or `multiValueHeaders` (when the request used them).
    package static func response(_ response: CGIResponse, shape: Shape, isHead: Bool) -> [UInt8] {
        let body = isHead ? [] : response.body
        let type = response.headers.first { $0.0.lowercased() == "content-type" }?.1.lowercased() ?? ""
        let isText = type.hasPrefix("text/") || type.contains("json") || body.isEmpty
        var answer: [String: JSONValue] = [
            "statusCode": .int(Int64(response.status)),
            "isBase64Encoded": .bool(!isText),
        ]
        let cookies = response.headers.filter { $0.0.lowercased() == "set-cookie" }.map(\.1)
        let others = response.headers.filter { $0.0.lowercased() != "set-cookie" }
        switch shape {
        case .httpV2:
            answer["headers"] = .object(Dictionary(others.map { ($0.0, JSONValue.string($0.1)) }) { first, _ in first })
            if !cookies.isEmpty { answer["cookies"] = .array(cookies.map(JSONValue.string)) }
        case .restV1(let multi), .loadBalancer(let multi):
            if multi {
                var grouped: [String: [JSONValue]] = [:]
                for (name, value) in response.headers { grouped[name, default: []].append(.string(value)) }
                answer["multiValueHeaders"] = .object(grouped.mapValues(JSONValue.array))
            } else {
                var single = Dictionary(others.map { ($0.0, JSONValue.string($0.1)) }) { first, _ in first }
                if let cookie = cookies.first { single["Set-Cookie"] = .string(cookie) }
                answer["headers"] = .object(single)
            }
            if case .loadBalancer = shape {
                answer["statusDescription"] = .string("\(response.status) \(response.status < 400 ? "OK" : "Error")")
            }
        }
        // "body" is written first (where sorted keys put it), quoted straight into its place in
        // an answer with room for the most it can take: a dry run's answer is a megabyte, and a
        // String of it, a tree holding it or a copy of it cost more than quoting it. Text that is
        // not all ASCII goes through String, which repairs bad UTF-8.
        let rest = JSONValue.object(answer).serialized
        var text = isText ? body : Array(Base64Bytes.encode(body).utf8)
        var (quoted, isASCII) = text.withUnsafeBufferPointer(JSONText.quotedBound)
        if !isASCII {
            text = Array(String(decoding: text, as: UTF8.self).utf8)
            quoted = text.withUnsafeBufferPointer(JSONText.quotedBound).bound
        }
        let head = Array(#"{"body":"#.utf8)
        return [UInt8](unsafeUninitializedCapacity: head.count + quoted + rest.count) { answer, count in
            let start = answer.baseAddress!
            head.withUnsafeBufferPointer { start.update(from: $0.baseAddress!, count: $0.count) }
            count = head.count + text.withUnsafeBufferPointer { JSONText.writeQuoted(utf8: $0, to: start + head.count) }
            start[count] = UInt8(ascii: ",")
            rest.withUnsafeBufferPointer { start.advanced(by: count + 1).update(from: $0.baseAddress! + 1, count: $0.count - 1) }
            count += rest.count
        }
    }
}
