/// A response in the CGI form (RFC 3875 section 6): `Status`, headers, blank line, body.
package struct CGIResponse: Sendable {
    package var status: Int
    package var headers: [(String, String)]
    package var body: [UInt8]

    package init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    package static func json(_ status: Int, _ value: some Encodable) -> CGIResponse {
        CGIResponse(status: status, headers: [("Content-Type", "application/json; charset=utf-8")], body: JSON.encode(value))
    }

    package static func error(_ error: APIError) -> CGIResponse {
        CGIResponse(
            status: error.status, headers: [("Content-Type", "application/json; charset=utf-8")] + error.headers,
            body: error.body)
    }

    package static func redirect(to location: String) -> CGIResponse {
        CGIResponse(status: 302, headers: [("Location", location)])
    }

    package func header(_ name: String) -> String? {
        headers.first { $0.0.equalsIgnoringCase(name) }?.1
    }

    /// The bytes a CGI host expects on stdout. No body for HEAD. Header values lose any CR or
    /// LF so that nothing can inject a header.
    package func rendered(forHead isHead: Bool = false) -> [UInt8] {
        var bytes = head(forHead: isHead)
        if !isHead { bytes += body }
        return bytes
    }

    /// The status line and headers of `rendered`, through the blank line; the body follows.
    package func head(forHead isHead: Bool = false) -> [UInt8] {
        var text = "Status: \(status) \(Self.reason(status))\r\n"
        var all = headers
        if !all.contains(where: { $0.0.equalsIgnoringCase("Cache-Control") }) {
            all.append(("Cache-Control", "no-store"))
        }
        all.append(("X-Content-Type-Options", "nosniff"))
        if status != 304 && status != 204 && !isHead { all.append(("Content-Length", String(body.count))) }
        for (name, value) in all {
            let clean = value.withoutLineBreaks
            text += "\(name): \(clean)\r\n"
        }
        text += "\r\n"
        return Array(text.utf8)
    }

    package static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 207: "Multi-Status"
        case 302: "Found"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: "Status"
        }
    }
}
