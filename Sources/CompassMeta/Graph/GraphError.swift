import CompassPlatform

/// Meta's error body: `{"error":{"message","type","code","error_subcode","fbtrace_id","is_transient",...}}`.
package struct GraphAPIError: Decodable, Sendable, Equatable {
    package var message: String?
    package var type: String?
    package var code: Int?
    package var errorSubcode: Int?
    package var errorUserTitle: String?
    package var errorUserMsg: String?
    package var fbtraceId: String?
    package var isTransient: Bool?
    /// The position in the request's `data` of the event Meta refused, where Meta names it
    /// (`error_data.event_index`, as its batch uploads answer); nil when it does not.
    package var eventIndex: Int?

    package enum CodingKeys: String, CodingKey {
        case message, type, code
        case errorSubcode = "error_subcode"
        case errorUserTitle = "error_user_title"
        case errorUserMsg = "error_user_msg"
        case fbtraceId = "fbtrace_id"
        case isTransient = "is_transient"
        case errorData = "error_data"
    }

    private enum ErrorDataKeys: String, CodingKey { case eventIndex = "event_index" }

    package init(
        message: String? = nil, type: String? = nil, code: Int? = nil, errorSubcode: Int? = nil, errorUserTitle: String? = nil,
        errorUserMsg: String? = nil, fbtraceId: String? = nil, isTransient: Bool? = nil, eventIndex: Int? = nil
    ) {
        (self.message, self.type, self.code, self.errorSubcode) = (message, type, code, errorSubcode)
        (self.errorUserTitle, self.errorUserMsg, self.fbtraceId, self.isTransient) = (errorUserTitle, errorUserMsg, fbtraceId, isTransient)
        self.eventIndex = eventIndex
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        message = try? container.decodeIfPresent(String.self, forKey: .message)
        type = try? container.decodeIfPresent(String.self, forKey: .type)
        code = try? container.decodeIfPresent(Int.self, forKey: .code)
        errorSubcode = try? container.decodeIfPresent(Int.self, forKey: .errorSubcode)
        errorUserTitle = try? container.decodeIfPresent(String.self, forKey: .errorUserTitle)
        errorUserMsg = try? container.decodeIfPresent(String.self, forKey: .errorUserMsg)
        fbtraceId = try? container.decodeIfPresent(String.self, forKey: .fbtraceId)
        isTransient = try? container.decodeIfPresent(Bool.self, forKey: .isTransient)
        let data = try? container.nestedContainer(keyedBy: ErrorDataKeys.self, forKey: .errorData)
        eventIndex = (try? data?.decodeIfPresent(Int.self, forKey: .eventIndex)) ?? nil
    }

    private struct Envelope: Decodable { var error: GraphAPIError }

    package static func decode(from body: [UInt8]) -> GraphAPIError? {
        guard let envelope = try? JSON.decode(Envelope.self, from: body), envelope.error.code != nil else { return nil }
        return envelope.error
    }
}

/// A Graph call that did not give what was asked.
package enum GraphFailure: ResponseError, Sendable, Equatable {
    /// Meta answered with its error body.
    case api(GraphAPIError, httpStatus: Int, retryAfterSeconds: Int?)
    /// No answer: connection, timeout, TLS.
    case transport(HTTPFailure)
    /// An answer that is not what Meta documents (wrong shape, unexpected status, unsafe paging link).
    case badResponse(status: Int, reason: String)

    /// What to do about it, per META-API.md's table.
    package enum Kind: Sendable, Equatable {
        case invalidToken, permission, rateLimited, transient, blocked, invalidEvent, invalidRequest
        /// Code 100, subcode 33: the object (a pixel) does not exist or this token cannot reach it
        /// any more (no longer shared): nothing wrong with the request itself.
        case objectUnavailable
    }

    package var kind: Kind {
        switch self {
        case .transport: return .transient
        case .badResponse(let status, _): return status >= 500 || status == 0 ? .transient : .invalidRequest
        case .api(let error, let status, _):
            let code = error.code ?? 0
            switch code {
            case 190, 102: return .invalidToken
            case 10, 200...299: return .permission
            case 4, 17, 32, 341, 613, 80000...80014: return .rateLimited
            case 368: return .blocked
            default: break
            }
            if status == 429 { return .rateLimited }
            if code == 1 || code == 2 || error.isTransient == true || status >= 500 { return .transient }
            if code == 100, let sub = error.errorSubcode, (2_804_000...2_804_999).contains(sub) { return .invalidEvent }
            if code == 100, error.errorSubcode == 33 { return .objectUnavailable }
            return .invalidRequest
        }
    }

    package var isRetryable: Bool { [.rateLimited, .transient, .blocked].contains(kind) }

    /// Meta refused the pixel, not the event: it cannot be reached (100/33), or the token lacks
    /// a permission on it (10, 200-299). Its events wait; settings' `pixelStatus` says why.
    package var isPixelRefusal: Bool { kind == .objectUnavailable || kind == .permission }

    /// Why the tenant must connect again, when this failure means so (a refused token or a
    /// missing permission); nil for failures that pass with time.
    package var reauthReason: String? {
        switch kind {
        case .invalidToken: "token_invalid"
        case .permission: "permission_missing"
        default: nil
        }
    }

    package var fbtraceId: String? {
        if case .api(let error, _, _) = self { return error.fbtraceId }
        return nil
    }

    /// For logs: codes and Meta's own message (which never holds the token); no URL.
    package var logFields: [String: LogValue] {
        switch self {
        case .api(let error, let status, _):
            var fields: [String: LogValue] = ["http_status": .int(status), "graph_code": .int(error.code ?? 0)]
            if let sub = error.errorSubcode { fields["graph_subcode"] = .int(sub) }
            if let message = error.message { fields["graph_message"] = .string(String(message.prefix(300))) }
            if let trace = error.fbtraceId { fields["fbtrace_id"] = .string(trace) }
            return fields
        case .transport(let failure):
            return ["transport_error": .string("\(failure)")]
        case .badResponse(let status, let reason):
            return ["http_status": .int(status), "reason": .string(reason)]
        }
    }

    package var logEntry: LogEntry? { LogEntry(.warn, "meta_request_failed", logFields) }

    /// The client-facing error for a Graph failure outside the OAuth callback.
    package var apiError: APIError {
        switch kind {
        case .invalidToken:
            APIError(409, "meta_token_invalid", "Meta no longer accepts this connection's token; connect Meta again.")
        case .permission:
            APIError(403, "meta_permission_missing", "Meta refused: the connection lacks a required permission.")
        case .rateLimited, .blocked:
            APIError(503, "meta_rate_limited", "Meta is rate limiting requests; try again later.", headers: APIError.retryAfter(60))
        case .transient:
            APIError(503, "meta_unavailable", "Meta could not be reached; try again shortly.", headers: APIError.retryAfter(5))
        case .invalidEvent, .invalidRequest:
            APIError(502, "meta_error", "Meta rejected the request.")
        case .objectUnavailable:
            APIError(502, "meta_object_unavailable", "Meta says the object does not exist or this connection can no longer reach it.")
        }
    }
}
