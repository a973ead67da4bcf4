import CurlBridge

#if canImport(Glibc)
    import Glibc
#endif

package struct HTTPRequest: Sendable {
    package var method: String
    package var url: String
    package var headers: [(String, String)] = []
    package var body: [UInt8]? = nil
    package var timeoutMilliseconds: Int = 10_000
    package var maxResponseBytes: Int = 4 << 20

    package init(
        method: String, url: String, headers: [(String, String)] = [], body: [UInt8]? = nil, timeoutMilliseconds: Int = 10_000,
        maxResponseBytes: Int = 4 << 20
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeoutMilliseconds = timeoutMilliseconds
        self.maxResponseBytes = maxResponseBytes
    }
}

package struct HTTPResponse: Sendable {
    package var status: Int
    /// Lower-cased names; a repeated header keeps its last value.
    package var headers: [String: String]
    package var body: [UInt8]

    package init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// A transfer that produced no HTTP response.
package enum HTTPFailure: Error, Equatable, Sendable {
    case unavailable(String)
    case timeout
    case connect(String)
    case tooLarge
    case tls(String)
    case other(String)
}

/// The one way this product makes an outbound HTTP call; tests inject their own.
package protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) throws(HTTPFailure) -> HTTPResponse
}

/// libcurl, loaded on first use: TLS verification on, no redirects followed, no proxy from the
/// environment, a per-request timeout in milliseconds and a cap on the response size.
package struct CurlTransport: HTTPTransport {
    package var caFile: String? = nil

    package func send(_ request: HTTPRequest) throws(HTTPFailure) -> HTTPResponse {
        let headerLines = request.headers.map { name, value in
            "\(name.withoutLineBreaks): \(value.withoutLineBreaks)"
        }
        var raw = compass_http_response()
        withCStrings(headerLines) { headerPointers in
            request.method.withCString { method in
                request.url.withCString { url in
                    withOptionalCString(caFile) { ca in
                        let body = request.body ?? []
                        body.withUnsafeBufferPointer { bodyBuffer in
                            var spec = compass_http_request(
                                method: method, url: url,
                                headers: headerPointers.baseAddress, header_count: headerPointers.count,
                                body: request.body == nil ? nil : (bodyBuffer.baseAddress ?? UnsafePointer(bitPattern: 1)),
                                body_length: body.count,
                                timeout_ms: request.timeoutMilliseconds,
                                connect_timeout_ms: min(request.timeoutMilliseconds, 5_000),
                                max_response_bytes: request.maxResponseBytes,
                                ca_file: ca)
                            compass_http_perform(&spec, &raw)
                        }
                    }
                }
            }
        }
        defer { compass_http_response_free(&raw) }
        let message = withUnsafeBytes(of: raw.message) { buffer in
            String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
        }
        switch raw.outcome {
        case COMPASS_HTTP_OK:
            let body = raw.body_length > 0 ? Array(UnsafeBufferPointer(start: raw.body, count: raw.body_length)) : []
            let headerText =
                raw.headers_length > 0
                ? String(decoding: UnsafeRawBufferPointer(start: raw.headers, count: raw.headers_length), as: UTF8.self) : ""
            return HTTPResponse(status: raw.status, headers: Self.parseHeaders(headerText), body: body)
        case COMPASS_HTTP_UNAVAILABLE: throw .unavailable(message)
        case COMPASS_HTTP_TIMEOUT: throw .timeout
        case COMPASS_HTTP_CONNECT: throw .connect(message)
        case COMPASS_HTTP_TOO_LARGE: throw .tooLarge
        case COMPASS_HTTP_TLS: throw .tls(message)
        default: throw .other(message)
        }
    }

    package static func parseHeaders(_ block: String) -> [String: String] {
        var headers: [String: String] = [:]
        for line in block.split(whereSeparator: { $0 == "\r\n" || $0 == "\n" }) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmed.lowercased()
            headers[name] = line[line.index(after: colon)...].trimmed
        }
        return headers
    }

    package init(caFile: String? = nil) {
        self.caFile = caFile
    }
}

private func withOptionalCString<R>(_ text: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let text else { return body(nil) }
    return text.withCString { body($0) }
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafeBufferPointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { for copy in copies { free(copy) } }
    let pointers = copies.map { UnsafePointer($0) }
    return pointers.withUnsafeBufferPointer(body)
}
