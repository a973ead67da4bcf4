/// The one error type whose words reach a client: a status, a stable snake_case code and a
/// sentence that is safe to show. Anything else thrown becomes a plain 500 `internal_error`.
struct APIError: Error, Equatable, Sendable {
    var status: Int
    var code: String
    var message: String
    var headers: [(String, String)] = []

    init(_ status: Int, _ code: String, _ message: String, headers: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    static func == (lhs: APIError, rhs: APIError) -> Bool {
        lhs.status == rhs.status && lhs.code == rhs.code && lhs.message == rhs.message
    }

    static func badRequest(_ code: String, _ message: String) -> APIError { APIError(400, code, message) }
    static let unauthorized = APIError(401, "unauthorized", "A valid Compass session is required.",
                                       headers: [("WWW-Authenticate", "Bearer")])
    static let notConnected = APIError(404, "not_connected", "Meta is not connected for this tenant.")
    static let storeUnavailable = APIError(503, "store_unavailable", "The credential store is unavailable; try again shortly.")
    static let internalError = APIError(500, "internal_error", "An internal error occurred.")

    static func methodNotAllowed(_ allowed: [String]) -> APIError {
        APIError(405, "method_not_allowed", "This route accepts \(allowed.joined(separator: ", ")).",
                 headers: [("Allow", allowed.joined(separator: ", "))])
    }

    static func misconfigured(_ variable: String, _ problem: String) -> APIError {
        APIError(500, "misconfigured", "The server is misconfigured: \(variable) \(problem).")
    }
}

struct ErrorBody: Encodable {
    struct Detail: Encodable {
        var code: String
        var message: String
    }
    var error: Detail
}
