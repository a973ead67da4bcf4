import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct SessionTests {
    let secret = Array("test-jwt-secret-0123456789abcdef0123456789".utf8)
    let now = Date(timeIntervalSince1970: 1_790_000_000)
    var verifier: SessionVerifier { SessionVerifier(secret: secret) }

    func token(header: String = #"{"alg":"HS256","typ":"JWT"}"#, claims: String, key: [UInt8]? = nil) -> String {
        let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(claims.utf8))
        return input + "." + Base64URL.encode(Crypto.hmacSHA256(key: key ?? secret, message: Array(input.utf8)))
    }

    @Test func acceptsAValidToken() throws {
        let session = try verifier.verify(token(claims: #"{"sub":"tenant_a","exp":1790000100,"iat":1790000000}"#), now: now)
        #expect(session == Session(tenantId: "tenant_a", expiresAt: 1_790_000_100, fromCookie: false))
    }

    @Test func honoursLeewayOnExpiryAndNotBefore() throws {
        #expect(try verifier.verify(token(claims: #"{"sub":"t","exp":1789999950}"#), now: now).tenantId == "t")
        #expect(throws: SessionVerifier.Failure.expired) { try verifier.verify(token(claims: #"{"sub":"t","exp":1789999900}"#), now: now) }
        #expect(try verifier.verify(token(claims: #"{"sub":"t","exp":1790000100,"nbf":1790000050}"#), now: now).tenantId == "t")
        #expect(throws: SessionVerifier.Failure.notYetValid) {
            try verifier.verify(token(claims: #"{"sub":"t","exp":1790009999,"nbf":1790000100}"#), now: now)
        }
        #expect(throws: SessionVerifier.Failure.notYetValid) {
            try verifier.verify(token(claims: #"{"sub":"t","exp":1790009999,"iat":1790000100}"#), now: now)
        }
    }

    @Test func rejectsEveryOtherAlgorithm() {
        for alg in ["none", "HS512", "RS256", "hs256"] {
            #expect(throws: SessionVerifier.Failure.algorithm) {
                try verifier.verify(token(header: #"{"alg":"\#(alg)"}"#, claims: #"{"sub":"t","exp":1790000100}"#), now: now)
            }
        }
        let unsigned =
            Base64URL.encode(Array(#"{"alg":"none"}"#.utf8)) + "." + Base64URL.encode(Array(#"{"sub":"t","exp":1790000100}"#.utf8)) + "."
        #expect(throws: SessionVerifier.Failure.algorithm) { try verifier.verify(unsigned, now: now) }
    }

    @Test func rejectsBadSignaturesAndMalformedTokens() {
        #expect(throws: SessionVerifier.Failure.signature) {
            try verifier.verify(
                token(claims: #"{"sub":"t","exp":1790000100}"#, key: Array("other-secret-0123456789abcdef01234".utf8)), now: now)
        }
        let good = token(claims: #"{"sub":"t","exp":1790000100}"#)
        #expect(throws: SessionVerifier.Failure.malformed) { try verifier.verify(String(good.dropLast(10)) + "!!", now: now) }
        #expect(throws: SessionVerifier.Failure.malformed) { try verifier.verify("a.b", now: now) }
        // Parts split at every dot: a fourth part, an empty one, a dot with a combining mark.
        for bad in [good + ".x", good + ".", "..", ".\(good)", good.replacingOccurrences(of: ".", with: ".\u{301}")] {
            #expect(throws: SessionVerifier.Failure.malformed) { try verifier.verify(bad, now: now) }
        }
        #expect(throws: SessionVerifier.Failure.missing) { try verifier.verify("", now: now) }
        #expect(throws: SessionVerifier.Failure.malformed) { try verifier.verify(String(repeating: "a", count: 100_000), now: now) }
        #expect(throws: SessionVerifier.Failure.malformed) { try verifier.verify(token(claims: #"{"sub":"t","exp":"soon"}"#), now: now) }
        #expect(throws: SessionVerifier.Failure.malformed) { try verifier.verify(token(claims: #"{"sub":"t"}"#), now: now) }
    }

    @Test(arguments: ["../etc", "a/b", "", String(repeating: "x", count: 65), "t\u{0}", "é"])
    func rejectsSubjectsThatAreNotTenantIds(sub: String) throws {
        let claims = String(decoding: try JSONEncoder().encode(["sub": sub]), as: UTF8.self).dropLast() + #","exp":1790000100}"#
        #expect(throws: SessionVerifier.Failure.subject) { try verifier.verify(token(claims: String(claims)), now: now) }
    }

    @Test func readsBearerFirstThenCookie() throws {
        let bearer = verifier.mint(tenantId: "from_bearer", expiresAt: 1_790_000_100)
        let cookie = verifier.mint(tenantId: "from_cookie", expiresAt: 1_790_000_100)
        let both = CGIRequest(
            method: "GET", path: "/", headers: ["authorization": "Bearer \(bearer)", "cookie": "compass_session=\(cookie)"])
        #expect(try verifier.session(for: both, now: now).tenantId == "from_bearer")
        let onlyCookie = CGIRequest(method: "GET", path: "/", headers: ["cookie": "other=1; compass_session=\(cookie)"])
        #expect(
            try verifier.session(for: onlyCookie, now: now) == Session(tenantId: "from_cookie", expiresAt: 1_790_000_100, fromCookie: true))
        #expect(throws: SessionVerifier.Failure.malformed) {
            try verifier.session(for: CGIRequest(method: "GET", path: "/", headers: ["authorization": "Basic abc"]), now: now)
        }
        #expect(throws: SessionVerifier.Failure.missing) { try verifier.session(for: CGIRequest(method: "GET", path: "/"), now: now) }
    }

    /// Security review: with the same secret, a token Compass signs for another audience or
    /// another issuer was a session.
    @Test func audienceAndIssuerMustMatchWhenConfigured() throws {
        let strict = SessionVerifier(secret: secret, audience: "compass-meta", issuer: "https://compass.example")
        let right = token(claims: #"{"sub":"t","exp":1790000100,"aud":"compass-meta","iss":"https://compass.example"}"#)
        #expect(try strict.verify(right, now: now).tenantId == "t")
        let listed = token(claims: #"{"sub":"t","exp":1790000100,"aud":["billing","compass-meta"],"iss":"https://compass.example"}"#)
        #expect(try strict.verify(listed, now: now).tenantId == "t")
        #expect(throws: SessionVerifier.Failure.audience) {
            try strict.verify(token(claims: #"{"sub":"t","exp":1790000100,"aud":"billing","iss":"https://compass.example"}"#), now: now)
        }
        #expect(throws: SessionVerifier.Failure.audience) {
            try strict.verify(token(claims: #"{"sub":"t","exp":1790000100,"iss":"https://compass.example"}"#), now: now)
        }
        #expect(throws: SessionVerifier.Failure.issuer) {
            try strict.verify(token(claims: #"{"sub":"t","exp":1790000100,"aud":"compass-meta","iss":"https://evil.example"}"#), now: now)
        }
        // Unconfigured, neither is looked at.
        #expect(try verifier.verify(token(claims: #"{"sub":"t","exp":1790000100,"aud":"billing"}"#), now: now).tenantId == "t")
        #expect(try strict.verify(strict.mint(tenantId: "m", expiresAt: 1_790_000_100), now: now).tenantId == "m")
    }

    /// A sibling subdomain may plant a second `compass_session`: the request counts only when
    /// exactly one of the cookies verifies.
    @Test func exactlyOneSessionCookieMustVerify() throws {
        let mine = verifier.mint(tenantId: "mine", expiresAt: 1_790_000_100)
        let planted = verifier.mint(tenantId: "planted", expiresAt: 1_790_000_100)
        func request(_ cookie: String) -> CGIRequest { CGIRequest(method: "GET", path: "/", headers: ["cookie": cookie]) }
        #expect(throws: SessionVerifier.Failure.ambiguous) {
            try verifier.session(for: request("compass_session=\(planted); compass_session=\(mine)"), now: now)
        }
        #expect(try verifier.session(for: request("compass_session=garbage; compass_session=\(mine)"), now: now).tenantId == "mine")
        #expect(try verifier.session(for: request("compass_session=\(mine); compass_session=\(mine)"), now: now).tenantId == "mine")
        #expect(throws: SessionVerifier.Failure.malformed) {
            try verifier.session(for: request("compass_session=garbage; compass_session=other"), now: now)
        }
    }
}
