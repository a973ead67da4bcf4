#if canImport(Glibc)
    import Glibc
#endif

/// A request as a CGI host hands it over (RFC 3875): meta-variables and a body on stdin.
package struct CGIRequest: Sendable {
    package var method: String
    /// The path as the host decoded it (`SCRIPT_NAME` + `PATH_INFO`).
    package var path: String
    /// What the host found beyond the mount it ran the program for; empty for an exact route.
    package var pathInfo: String
    package var query: QueryParameters
    /// Header names lower-cased with `-`, as in `authorization`, `x-forwarded-for`.
    package var headers: [String: String]
    package var body: [UInt8]

    package init(
        method: String, path: String, pathInfo: String = "", query: QueryParameters = QueryParameters(),
        headers: [String: String] = [:], body: [UInt8] = []
    ) {
        self.method = method
        self.path = path
        self.pathInfo = pathInfo
        self.query = query
        self.headers = headers
        self.body = body
    }

    package struct Limits: Sendable {
        package var maxBodyBytes: Int
        package var bodyDeadlineMilliseconds: Int

        package init(maxBodyBytes: Int = 1 << 20, bodyDeadlineMilliseconds: Int = 2_000) {
            self.maxBodyBytes = maxBodyBytes
            self.bodyDeadlineMilliseconds = bodyDeadlineMilliseconds
        }
    }

    /// Everything except the body, which is read by `readBody` once the method is known to be
    /// allowed (no point reading a body for a 405).
    package static func head(from environment: [String: String]) throws(APIError) -> CGIRequest {
        guard let method = environment["REQUEST_METHOD"], !method.isEmpty,
            method.consists(of: ASCII.isUpper, length: 1...16)
        else {
            throw .badRequest("bad_request", "REQUEST_METHOD is missing or malformed.")
        }
        var headers: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix("HTTP_") {
            let header = name.dropFirst(5).lowercased().replacing("_", with: "-")
            headers[header] = value
        }
        if let type = environment["CONTENT_TYPE"], !type.isEmpty { headers["content-type"] = type }
        // httpoxy: a `Proxy:` request header arrives as HTTP_PROXY; it means nothing here.
        headers["proxy"] = nil
        let (path, pathInfo) = requestPath(environment)
        return CGIRequest(
            method: method, path: path, pathInfo: pathInfo,
            query: QueryParameters(parsing: environment["QUERY_STRING"] ?? ""),
            headers: headers)
    }

    /// The body, exactly CONTENT_LENGTH bytes from `descriptor`, bounded in size and time. A
    /// chunked request some hosts pass on without CONTENT_LENGTH (Apache sets
    /// HTTP_TRANSFER_ENCODING) is read to its end, within the same limits.
    package static func readBody(environment: [String: String], descriptor: Int32, limits: Limits) throws(APIError) -> [UInt8] {
        if (environment["CONTENT_LENGTH"] ?? "").isEmpty,
            environment["HTTP_TRANSFER_ENCODING"]?.lowercased().contains("chunked") == true
        {
            return try readToEnd(descriptor, limits: limits)
        }
        let length = try contentLength(environment["CONTENT_LENGTH"], limit: limits.maxBodyBytes)
        guard length > 0 else { return [] }
        var body = [UInt8](repeating: 0, count: length)
        var received = 0
        let deadline = monotonicMilliseconds() + Int64(limits.bodyDeadlineMilliseconds)
        while received < length {
            let count = try readSome(descriptor, into: &body, at: received, deadline: deadline)
            guard count > 0 else { throw incompleteBody }
            received += count
        }
        return body
    }

    package static func contentLength(_ raw: String?, limit: Int) throws(APIError) -> Int {
        guard let raw, !raw.isEmpty else { return 0 }
        guard raw.consists(of: ASCII.isDigit, length: 1...18), let length = Int(raw) else {
            throw .badRequest("bad_content_length", "Content-Length must be a non-negative whole number.")
        }
        guard length <= limit else {
            throw bodyTooLarge(limit)
        }
        return length
    }

    /// The body a host has already read (FastCGI's STDIN records): `total` bytes arrived, of
    /// which at most the limit and one more are kept. Checked against CONTENT_LENGTH as if read.
    package static func checkBody(_ bytes: [UInt8], total: Int, environment: [String: String], limits: Limits) throws(APIError) -> [UInt8] {
        if !(environment["CONTENT_LENGTH"] ?? "").isEmpty {
            let length = try contentLength(environment["CONTENT_LENGTH"], limit: limits.maxBodyBytes)
            guard total >= length else { throw incompleteBody }
            return Array(bytes.prefix(length))
        }
        guard total <= limits.maxBodyBytes else {
            throw bodyTooLarge(limits.maxBodyBytes)
        }
        return bytes
    }

    private static let incompleteBody = APIError.badRequest(
        "incomplete_body", "The request body ended before Content-Length bytes arrived.")

    private static func bodyTooLarge(_ limit: Int) -> APIError {
        APIError(413, "body_too_large", "The request body is larger than \(limit) bytes.")
    }

    private static func readToEnd(_ descriptor: Int32, limits: Limits) throws(APIError) -> [UInt8] {
        var body: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let deadline = monotonicMilliseconds() + Int64(limits.bodyDeadlineMilliseconds)
        while true {
            let count = try readSome(descriptor, into: &chunk, deadline: deadline)
            if count == 0 { return body }
            guard body.count + count <= limits.maxBodyBytes else {
                throw bodyTooLarge(limits.maxBodyBytes)
            }
            body += chunk[0..<count]
        }
    }

    /// Reads and discards what the client still sends (at most `limit` bytes, within the
    /// deadline), for a request answered without its body (405, 413): a host that is still
    /// writing the body to the program would otherwise lose the answer.
    package static func drainBody(
        environment: [String: String], descriptor: Int32, limit: Int = 16 << 20,
        deadlineMilliseconds: Int = 1_000
    ) {
        let declared = Int(environment["CONTENT_LENGTH"] ?? "") ?? 0
        let chunked = environment["HTTP_TRANSFER_ENCODING"]?.lowercased().contains("chunked") == true
        guard declared > 0 || chunked else { return }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let deadline = monotonicMilliseconds() + Int64(deadlineMilliseconds)
        var drained = 0
        while drained < limit, let count = try? readSome(descriptor, into: &chunk, deadline: deadline), count > 0 {
            drained += count
            if declared > 0 && drained >= declared { return }
        }
    }

    /// One read into `buffer` from `offset` to its end, waiting until `deadline` for input; 0 at
    /// the end of input.
    private static func readSome(
        _ descriptor: Int32, into buffer: inout [UInt8], at offset: Int = 0,
        deadline: Int64
    ) throws(APIError) -> Int {
        while true {
            let remaining = deadline - monotonicMilliseconds()
            guard remaining > 0 else { throw incompleteBody }
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(remaining))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { throw incompleteBody }
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard count >= 0 else { throw incompleteBody }
            return count
        }
    }

    /// The path the client asked for and what lies beyond the program's mount. A host decodes
    /// and normalizes `SCRIPT_NAME` and `PATH_INFO` (`%72eplay` is `replay`); only without them is
    /// REQUEST_URI's path used, decoded and normalized the same way.
    private static func requestPath(_ environment: [String: String]) -> (path: String, pathInfo: String) {
        let info = environment["PATH_INFO"] ?? ""
        if let script = environment["SCRIPT_NAME"], script.hasPrefix("/") {
            return (script + info, info)
        }
        if let uri = environment["REQUEST_URI"], uri.hasPrefix("/") {
            return (normalizedPath(QueryParameters.decodePath(uri.prefix { $0 != "?" })), "")
        }
        return (info.isEmpty ? "/" : info, info)
    }

    /// Without empty, `.` and `..` segments, as a host resolves them.
    package static func normalizedPath(_ path: String) -> String {
        var segments: [Substring] = []
        for segment in path.split(separator: "/") {
            switch segment {
            case ".": continue
            case "..": _ = segments.popLast()
            default: segments.append(segment)
            }
        }
        return "/" + segments.joined(separator: "/")
    }

    // MARK: Reading

    package func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// Every value of the cookie `name` in the `Cookie` header, in order (a browser sends one
    /// per matching domain and path).
    package func cookieValues(_ name: String) -> [String] {
        var values: [String] = []
        for part in (headers["cookie"] ?? "").split(separator: ";") {
            let pieces = part.split(separator: "=", maxSplits: 1)
            guard pieces.count == 2, pieces[0].trimmed == name else { continue }
            var value = pieces[1].trimmed
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            values.append(value)
        }
        return values
    }

    package var isHead: Bool { method == "HEAD" }

    /// `Content-Type: application/json`, with or without parameters (`; charset=utf-8`).
    package var hasJSONContentType: Bool {
        guard let type = header("content-type") else { return false }
        return type.split(separator: ";", maxSplits: 1)[0].trimmed.lowercased() == "application/json"
    }

    /// The token of `Authorization: Bearer <token>` (the scheme in any case); nil when the
    /// header is absent or names another scheme.
    package var bearerToken: String? {
        guard let value = header("authorization") else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmed
    }
}

package func monotonicMilliseconds() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
}
