/// The one error type whose words reach a client: a status, a stable snake_case code and a
/// sentence that is safe to show. Anything else thrown becomes a plain 500 `internal_error`.
package struct APIError: Error, Equatable, Sendable {
    package var status: Int
    package var code: String
    package var message: String
    package var headers: [(String, String)] = []

    package init(_ status: Int, _ code: String, _ message: String, headers: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    package static func == (lhs: APIError, rhs: APIError) -> Bool {
        lhs.status == rhs.status && lhs.code == rhs.code && lhs.message == rhs.message
    }

    package static func badRequest(_ code: String, _ message: String) -> APIError { APIError(400, code, message) }
    package static let unauthorized = APIError(
        401, "unauthorized", "A valid Compass session is required.",
        headers: [("WWW-Authenticate", "Bearer")])
    package static let notConnected = APIError(404, "not_connected", "Meta is not connected for this tenant.")
    package static let storeUnavailable = APIError(
        503, "store_unavailable", "The credential store is unavailable; try again shortly.", headers: retryAfter(5))

    /// `Retry-After` in seconds: every 503 says when a retry is worth making.
    package static func retryAfter(_ seconds: Int) -> [(String, String)] { [("Retry-After", String(seconds))] }
    /// Anything no layer gave an answer for: a plain 500.
    package static let unexpected = APIError(500, "internal_error", "An internal error occurred.")
    package static let notFound = APIError(404, "not_found", "No such route.")
    package static let unsupportedMediaType = APIError(
        415, "unsupported_media_type", "The body must be sent as Content-Type: application/json.")

    package static func methodNotAllowed(_ allowed: [String]) -> APIError {
        APIError(
            405, "method_not_allowed", "This route accepts \(allowed.joined(separator: ", ")).",
            headers: [("Allow", allowed.joined(separator: ", "))])
    }

    /// `{"error":{"code":...,"message":...}}`: the body of every error answer.
    package var body: [UInt8] { JSON.encode(ErrorBody(error: .init(code: code, message: message))) }

    package static func misconfigured(_ variable: String, _ problem: String) -> APIError {
        APIError(500, "misconfigured", "The server is misconfigured: \(variable) \(problem).")
    }
}

package struct ErrorBody: Encodable {
    package struct Detail: Encodable {
        package var code: String
        package var message: String
    }
    package var error: Detail
}

/// An error that knows what a client is told and what an operator's log says about it. The one
/// rule from a failure to an answer (`APIError.answer(for:logger:)`), for HTTP routes and direct
/// runs alike: each layer's error types conform where they are defined.
package protocol ResponseError: Error {
    var apiError: APIError { get }
    /// The operator's log line; nil when the answer says all (the client's own mistake).
    var logEntry: LogEntry? { get }
}

/// One log line, chosen field by field.
package struct LogEntry: Sendable {
    package var level: LogLevel
    package var event: String
    package var fields: [String: LogValue]

    package init(_ level: LogLevel, _ event: String, _ fields: [String: LogValue] = [:]) {
        self.level = level
        self.event = event
        self.fields = fields
    }
}

extension APIError: ResponseError {
    package var apiError: APIError { self }
    package var logEntry: LogEntry? { nil }

    /// The answer for anything thrown while serving, logged once. An error that does not know
    /// its answer is a plain 500 `internal_error`; only its type is logged, never its text.
    package static func answer(for error: any Error, logger: Logger) -> APIError {
        guard let known = error as? any ResponseError else {
            logger.error("unexpected_error", ["error": .string("\(type(of: error))")])
            return .unexpected
        }
        if let entry = known.logEntry { logger.log(entry.level, entry.event, entry.fields) }
        return known.apiError
    }
}

extension ConfigError: ResponseError {
    /// The variable's name is not a secret: it tells an operator what to fix.
    package var logEntry: LogEntry? { LogEntry(.error, "misconfigured", ["variable": .string(variable), "problem": .string(problem)]) }
}

extension CredentialCipher.Failure: ResponseError {
    package var apiError: APIError {
        APIError(500, "credential_unreadable", "The stored token cannot be decrypted with the configured keys.")
    }
    package var logEntry: LogEntry? { LogEntry(.error, "credential_unreadable", ["error": .string("\(self)")]) }
}
