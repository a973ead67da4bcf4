#if canImport(Glibc)
import Glibc
#endif

/// A request as a CGI host hands it over (RFC 3875): meta-variables and a body on stdin.
package struct CGIRequest: Sendable {
    package var method: String
    package var path: String
    package var query: QueryParameters
    /// Header names lower-cased with `-`, as in `authorization`, `x-forwarded-for`.
    package var headers: [String: String]
    package var body: [UInt8]

    package init(method: String, path: String, query: QueryParameters = QueryParameters(),
         headers: [String: String] = [:], body: [UInt8] = []) {
        self.method = method
        self.path = path
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
              method.consists(of: ASCII.isUpper, length: 1...16) else {
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
        return CGIRequest(method: method, path: requestPath(environment),
                          query: QueryParameters(parsing: environment["QUERY_STRING"] ?? ""),
                          headers: headers)
    }

    /// The body, exactly CONTENT_LENGTH bytes from `descriptor`, bounded in size and time.
    package static func readBody(environment: [String: String], descriptor: Int32, limits: Limits) throws(APIError) -> [UInt8] {
        let length = try contentLength(environment["CONTENT_LENGTH"], limit: limits.maxBodyBytes)
        guard length > 0 else { return [] }
        var body = [UInt8](repeating: 0, count: length)
        var received = 0
        let deadline = monotonicMilliseconds() + Int64(limits.bodyDeadlineMilliseconds)
        while received < length {
            let remaining = deadline - monotonicMilliseconds()
            guard remaining > 0 else { throw incompleteBody }
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(remaining))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { throw incompleteBody }
            let count = body.withUnsafeMutableBytes { buffer in
                read(descriptor, buffer.baseAddress! + received, length - received)
            }
            if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
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
            throw APIError(413, "body_too_large", "The request body is larger than \(limit) bytes.")
        }
        return length
    }

    private static let incompleteBody = APIError.badRequest(
        "incomplete_body", "The request body ended before Content-Length bytes arrived.")

    /// The path the client asked for, without the query.
    private static func requestPath(_ environment: [String: String]) -> String {
        if let uri = environment["REQUEST_URI"], uri.hasPrefix("/") {
            return String(uri.prefix { $0 != "?" })
        }
        return (environment["SCRIPT_NAME"] ?? "") + (environment["PATH_INFO"] ?? "")
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
