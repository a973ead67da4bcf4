import CompassMeta
import CompassPlatform
import CompassStorage

/// Meta's callbacks to the app: POST /api/connect/meta/deauthorize (a user removed the app)
/// and POST /api/connect/meta/data-deletion (a user asks for their data to be deleted), both
/// with a `signed_request`; GET /api/connect/meta/data-deletion?code= shows a deletion's status.
package struct MetaWebhooksHandler: Handler {
    package static let name = "meta-webhooks"
    package static let methods = ["GET", "POST"]
    package static let paths = ["/api/connect/meta/deauthorize", "/api/connect/meta/data-deletion"]
    /// A signed request older than this is refused (a replay).
    package static let maxAgeSeconds: Int64 = 3600
    /// Clock skew allowed for a request issued "in the future".
    package static let maxFutureSeconds: Int64 = 300
    package let dependencies: Dependencies

    package struct SignedRequest: Decodable {
        package var algorithm: String
        package var userId: String
        package var issuedAt: Int64
        package enum CodingKeys: String, CodingKey {
            case algorithm
            case userId = "user_id"
            case issuedAt = "issued_at"
        }
    }

    package struct Deletion: Codable, Equatable {
        package var confirmationCode: String
        package var status: String
        package var tenants: Int
        package var requestedAt: Date
        package var completedAt: Date?
    }

    package func handle(_ request: CGIRequest) throws -> CGIResponse {
        let isDeletion = request.path.hasSuffix("/data-deletion")
        guard isDeletion || request.path.hasSuffix("/deauthorize") else {
            throw APIError(404, "not_found", "Unknown Meta callback.")
        }
        if request.method != "POST" {
            guard isDeletion else { throw APIError.methodNotAllowed(["POST"]) }
            return try deletionStatus(request.query.single("code"))
        }
        let app = try dependencies.config.meta.app()
        let (signed, raw) = try verify(request, secret: app.secret)
        // A signed request is valid for an hour: one seen before is answered as the first time
        // and changes nothing again (a replayed deauthorize must not cut off a reconnect).
        let seenKey = RecordKey.signedRequest(Hex.encode(Crypto.sha256((isDeletion ? "data-deletion:" : "deauthorize:") + raw)))
        if let seen = try dependencies.records.load(SeenRequest.self, at: seenKey)?.0 {
            dependencies.logger.info("signed_request_replayed", ["deletion": .bool(isDeletion)])
            return isDeletion ? try deletionAnswer(seen.confirmationCode ?? "") : .json(200, ["success": true])
        }
        let lifecycle = IntegrationLifecycle(dependencies: dependencies)
        if isDeletion {
            let code = Hex.encode(dependencies.random.bytes(10))
            let tenants = try lifecycle.deleteData(metaUserId: signed.userId)
            let now = dependencies.clock.now
            try dependencies.records.save(
                Deletion(
                    confirmationCode: code, status: "completed", tenants: tenants,
                    requestedAt: now, completedAt: now), at: RecordKey.deletion(code))
            dependencies.logger.info("meta_data_deleted", ["tenants": .int(tenants)])
            let first = try remember(SeenRequest(confirmationCode: code), at: seenKey).confirmationCode ?? code
            // A concurrent copy answered first: one confirmation code for one request.
            if first != code { try dependencies.store.delete(RecordKey.deletion(code)) }
            return try deletionAnswer(first)
        }
        let tenants = try lifecycle.deauthorize(metaUserId: signed.userId)
        dependencies.logger.info("meta_deauthorized", ["tenants": .int(tenants)])
        _ = try remember(SeenRequest(confirmationCode: nil), at: seenKey)
        return .json(200, ["success": true])
    }

    /// What is kept of a signed request already acted on, until it is too old to be accepted.
    package struct SeenRequest: Codable, Equatable {
        package var confirmationCode: String?
    }

    /// Records the request as seen; when a concurrent copy recorded it first, that copy's record.
    private func remember(_ seen: SeenRequest, at key: String) throws(StoreError) -> SeenRequest {
        let lifetime = Int(Self.maxAgeSeconds + Self.maxFutureSeconds) + 60
        do {
            try dependencies.records.create(seen, at: key, ttl: lifetime)
            return seen
        } catch .alreadyExists {
            return try dependencies.records.load(SeenRequest.self, at: key)?.0 ?? seen
        }
    }

    private func deletionAnswer(_ code: String) throws -> CGIResponse {
        struct Answer: Encodable {
            var url: String
            var confirmationCode: String
            enum CodingKeys: String, CodingKey {
                case url
                case confirmationCode = "confirmation_code"
            }
        }
        let base = try dependencies.config.meta.redirectBase()
        return .json(200, Answer(url: "\(base)/api/connect/meta/data-deletion?code=\(code)", confirmationCode: code))
    }

    /// The verified payload and the `signed_request` as sent.
    package func verify(_ request: CGIRequest, secret: String) throws -> (SignedRequest, String) {
        let form = QueryParameters(parsing: String(decoding: request.body, as: UTF8.self))
        guard let signed = form.single("signed_request") else {
            throw APIError.badRequest("missing_signed_request", "The form field signed_request is required.")
        }
        return (try Self.verify(signed, secret: secret, now: dependencies.clock.now), signed)
    }

    /// `signed_request` = base64url(signature) "." base64url(payload); the signature is
    /// HMAC-SHA256 of the payload part as sent, keyed by the app secret.
    package static func verify(_ signed: String, secret: String, now: Date) throws(APIError) -> SignedRequest {
        guard signed.utf8.count <= 8192 else {
            throw APIError.badRequest("malformed_signed_request", "signed_request is too long.")
        }
        let parts = signed.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let signature = Base64URL.decode(parts[0]), let payloadBytes = Base64URL.decode(parts[1]),
            let payload = try? JSON.decode(SignedRequest.self, from: payloadBytes)
        else {
            throw APIError.badRequest("malformed_signed_request", "signed_request is not base64url(signature).base64url(payload).")
        }
        let expected = Crypto.hmacSHA256(key: Array(secret.utf8), message: Array(parts[1].utf8))
        guard Crypto.constantTimeEquals(expected, signature) else {
            throw APIError(401, "invalid_signature", "signed_request is not signed with this app's secret.")
        }
        guard payload.algorithm.uppercased() == "HMAC-SHA256" else {
            throw APIError.badRequest("unsupported_algorithm", "signed_request must use HMAC-SHA256.")
        }
        let age = now.unixSeconds - payload.issuedAt
        guard age <= Self.maxAgeSeconds, age >= -Self.maxFutureSeconds else {
            throw APIError(401, "stale_signed_request", "signed_request was issued too long ago.")
        }
        guard payload.userId.consists(of: ASCII.isDigit, length: 1...32) else {
            throw APIError.badRequest("malformed_signed_request", "signed_request has no valid user_id.")
        }
        return payload
    }

    private func deletionStatus(_ code: String?) throws -> CGIResponse {
        guard let code, code.consists(of: { ASCII.isDigit($0) || (97...102).contains($0) }, length: 20...20) else {
            throw APIError.badRequest("invalid_code", "code must be a confirmation code.")
        }
        let found: Deletion? = try dependencies.records.load(Deletion.self, at: RecordKey.deletion(code))?.0
        guard let found else { throw APIError(404, "unknown_code", "No deletion request has that confirmation code.") }
        return .json(200, found)
    }

    package init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }
}
