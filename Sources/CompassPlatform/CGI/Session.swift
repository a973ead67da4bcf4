/// The tenant a request acts for, from a Compass session JWT (RFC 7519, HS256 only).
package struct Session: Sendable, Equatable {
    package var tenantId: String
    package var expiresAt: Int64
    /// True when the token came from the cookie, so a cross-site check applies.
    package var fromCookie: Bool
}

package struct SessionVerifier: Sendable {
    package static let cookieName = "compass_session"
    package static let leewaySeconds: Int64 = 60
    /// A Compass session is a few hundred bytes; anything far larger is not one.
    package static let maxTokenBytes = 4096

    package var secret: [UInt8]
    /// When set, `aud` (a string or an array of strings) must name it.
    package var audience: String?
    /// When set, `iss` must equal it.
    package var issuer: String?

    package enum Failure: String, Error, Equatable {
        case missing, malformed, algorithm, signature, expired
        case notYetValid = "not_yet_valid"
        case subject, audience, issuer
        /// Several `compass_session` cookies verified: a sibling site may have planted one.
        case ambiguous
    }

    /// From `Authorization: Bearer` first, else the `compass_session` cookie.
    package func session(for request: CGIRequest, now: Date) throws(Failure) -> Session {
        if request.header("authorization") != nil {
            guard let token = request.bearerToken else { throw .malformed }
            return try verify(token, now: now, fromCookie: false)
        }
        // A sibling subdomain can set a second `compass_session` for this host: the request
        // counts only when exactly one of the cookies verifies.
        var seen: Set<String> = []
        let cookies = request.cookieValues(Self.cookieName).filter { seen.insert($0).inserted }
        guard !cookies.isEmpty else { throw .missing }
        var sessions: [Session] = []
        var firstFailure: Failure?
        for cookie in cookies {
            do {
                sessions.append(try verify(cookie, now: now, fromCookie: true))
            } catch {
                firstFailure = firstFailure ?? error
            }
        }
        guard sessions.count <= 1 else { throw .ambiguous }
        guard let session = sessions.first else { throw firstFailure ?? .missing }
        return session
    }

    package func verify(_ token: String, now: Date, fromCookie: Bool = false) throws(Failure) -> Session {
        guard !token.isEmpty else { throw .missing }
        guard token.utf8.count <= Self.maxTokenBytes else { throw .malformed }
        // Split at the dots by their bytes: a split by Characters cost about 500 instructions a
        // character of every request's token. (A dot with a combining mark after it, which the
        // Characters would not split at, leaves a part outside base64url's alphabet either way.)
        let parts = token.utf8.split(separator: UInt8(ascii: "."), maxSplits: 3, omittingEmptySubsequences: false).map(Substring.init)
        guard parts.count == 3, let headerBytes = Base64URL.decode(parts[0]),
            let payloadBytes = Base64URL.decode(parts[1]), let signature = Base64URL.decode(parts[2])
        else {
            throw .malformed
        }
        guard let header = try? JSONParser.parse(headerBytes), header.object != nil else { throw .malformed }
        guard header["alg"]?.string == "HS256" else { throw .algorithm }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        let expected = Crypto.hmacSHA256(key: secret, message: signingInput)
        guard Crypto.constantTimeEquals(expected, signature) else { throw .signature }
        guard let claims = try? JSONParser.parse(payloadBytes), claims.object != nil else { throw .malformed }

        let current = now.unixSeconds
        guard let exp = Self.numericDate(claims["exp"]) else { throw .malformed }
        guard current < exp + Self.leewaySeconds else { throw .expired }
        for name in ["nbf", "iat"] {
            guard let claim = claims[name] else { continue }
            guard let value = Self.numericDate(claim) else { throw .malformed }
            if value > current + Self.leewaySeconds { throw .notYetValid }
        }
        if let audience {
            let named = claims["aud"]?.string.map { [$0] } ?? claims["aud"]?.array?.compactMap(\.string) ?? []
            guard named.contains(audience) else { throw .audience }
        }
        if let issuer, claims["iss"]?.string != issuer { throw .issuer }
        guard let sub = claims["sub"]?.string, Tenant.isValidId(sub) else { throw .subject }
        return Session(tenantId: sub, expiresAt: exp, fromCookie: fromCookie)
    }

    /// A signed token, for the development login and for tests. Compass itself mints real ones.
    package func mint(tenantId: String, expiresAt: Int64, issuedAt: Int64? = nil) -> String {
        let header = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        var claims = #"{"sub":"\#(tenantId)","exp":\#(expiresAt)"#
        if let issuedAt { claims += #","iat":\#(issuedAt)"# }
        if let audience { claims += #","aud":"# + JSONText.quoted(audience) }
        if let issuer { claims += #","iss":"# + JSONText.quoted(issuer) }
        claims += "}"
        let input = header + "." + Base64URL.encode(Array(claims.utf8))
        return input + "." + Base64URL.encode(Crypto.hmacSHA256(key: secret, message: Array(input.utf8)))
    }

    /// RFC 7519 NumericDate: a JSON number (possibly fractional). Anything else is malformed.
    private static func numericDate(_ value: JSONValue?) -> Int64? {
        guard let number = value?.number, number.isFinite, abs(number) < 1e15 else { return nil }
        return Int64(number.rounded(.down))
    }

    package init(secret: [UInt8], audience: String? = nil, issuer: String? = nil) {
        self.secret = secret
        self.audience = audience
        self.issuer = issuer
    }
}

package enum Tenant {
    /// `[A-Za-z0-9_-]{1,64}`: a tenant id is also a storage key segment.
    package static func isValidId(_ id: String) -> Bool { id.consists(of: ASCII.isIdentifier, length: 1...64) }
    package static func isValidId(_ id: Substring) -> Bool { id.consists(of: ASCII.isIdentifier, length: 1...64) }
}
