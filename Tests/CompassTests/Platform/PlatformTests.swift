import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage

@Suite struct EncodingTests {
    @Test func base64URLRoundTripsWithoutPadding() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(($0 * 37 + 251) % 256) }
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(Base64URL.decode(text) == bytes)
        }
        #expect(Base64URL.decode("a b") == nil)
        #expect(Base64URL.decode("abcde") == nil)
    }

    @Test func hexRecognisesDigests() {
        #expect(Hex.isSHA256Digest(String(repeating: "aB", count: 32)))
        #expect(!Hex.isSHA256Digest(String(repeating: "a", count: 63)))
        #expect(!Hex.isSHA256Digest(String(repeating: "g", count: 64)))
        #expect(Hex.decode("0aff") == [10, 255])
        #expect(Hex.decode("0af") == nil)
    }
}

@Suite struct QueryParametersTests {
    @Test func keepsRepeatedNamesAndOrder() {
        let query = QueryParameters(parsing: "a=1&b=2&a=3")
        #expect(query.values("a") == ["1", "3"])
        #expect(query.single("a") == nil)
        #expect(query.single("b") == "2")
        #expect(query.contains("a"))
    }

    @Test func decodesPlusAndPercentAndKeepsBrokenEscapesLiterally() {
        let query = QueryParameters(parsing: "q=a+b%20c&bad=%zz%4&u=%C3%A9&empty=&flag")
        #expect(query.single("q") == "a b c")
        #expect(query.single("bad") == "%zz%4")
        #expect(query.single("u") == "é")
        #expect(query.single("empty") == "")
        #expect(query.single("flag") == "")
    }

    @Test func invalidUTF8BecomesReplacementCharacters() {
        #expect(QueryParameters(parsing: "x=%FF%FE").single("x") == "\u{FFFD}\u{FFFD}")
    }

    @Test func encodesEverythingButUnreserved() {
        var query = QueryParameters()
        query.append("redirect_uri", "https://a.b/c?d=e f")
        #expect(query.encoded == "redirect_uri=https%3A%2F%2Fa.b%2Fc%3Fd%3De%20f")
    }
}

@Suite struct CGIRequestTests {
    @Test func readsVariablesHeadersAndCookies() throws {
        let request = try CGIRequest.head(from: [
            "REQUEST_METHOD": "GET", "REQUEST_URI": "/api/connect/meta?x=1", "QUERY_STRING": "x=1",
            "HTTP_COOKIE": "a=1; compass_session=\"tok\"; a=2", "HTTP_X_FORWARDED_FOR": "1.2.3.4",
            "HTTP_PROXY": "http://evil:8080", "CONTENT_TYPE": "application/json",
        ])
        #expect(request.method == "GET")
        #expect(request.path == "/api/connect/meta")
        #expect(request.query.single("x") == "1")
        #expect(request.header("X-Forwarded-For") == "1.2.3.4")
        #expect(request.header("content-type") == "application/json")
        #expect(request.header("proxy") == nil)
        #expect(request.cookieValues("a") == ["1", "2"])
        #expect(request.cookieValues("compass_session") == ["tok"])
        #expect(request.cookieValues("missing") == [])
    }

    @Test func pathFallsBackToScriptNameAndPathInfo() throws {
        let request = try CGIRequest.head(from: ["REQUEST_METHOD": "POST", "SCRIPT_NAME": "/api", "PATH_INFO": "/x"])
        #expect(request.path == "/api/x")
    }

    @Test func missingOrOddMethodIsBadRequest() {
        #expect(throws: APIError.self) { try CGIRequest.head(from: [:]) }
        #expect(throws: APIError.self) { try CGIRequest.head(from: ["REQUEST_METHOD": "get me"]) }
    }

    @Test(arguments: [("", 0), ("0", 0), ("12", 12)])
    func acceptsWellFormedContentLengths(raw: String, expected: Int) throws {
        #expect(try CGIRequest.contentLength(raw, limit: 100) == expected)
    }

    @Test(arguments: ["-1", "1e3", " 5", "abc", "99999999999999999999999"])
    func rejectsMalformedContentLength(raw: String) {
        #expect(throws: APIError.badRequest("bad_content_length", "Content-Length must be a non-negative whole number.")) {
            try CGIRequest.contentLength(raw, limit: 100)
        }
    }

    @Test func rejectsBodiesOverTheCapWithoutReadingThem() {
        #expect(throws: APIError(413, "body_too_large", "The request body is larger than 100 bytes.")) {
            try CGIRequest.contentLength("101", limit: 100)
        }
    }

    @Test func readsExactlyContentLengthBytes() throws {
        let pipe = Pipe()
        pipe.fileHandleForWriting.write(Data("{\"a\":1}trailing".utf8))
        let body = try CGIRequest.readBody(
            environment: ["CONTENT_LENGTH": "7"],
            descriptor: pipe.fileHandleForReading.fileDescriptor, limits: .init())
        #expect(String(decoding: body, as: UTF8.self) == "{\"a\":1}")
    }

    @Test func shortBodyWithClosedInputIsIncomplete() {
        let pipe = Pipe()
        pipe.fileHandleForWriting.write(Data("abc".utf8))
        try? pipe.fileHandleForWriting.close()
        #expect(throws: APIError.self) {
            try CGIRequest.readBody(
                environment: ["CONTENT_LENGTH": "10"],
                descriptor: pipe.fileHandleForReading.fileDescriptor, limits: .init())
        }
    }

    @Test func shortBodyWithOpenInputGivesUpAtTheDeadline() {
        let pipe = Pipe()
        pipe.fileHandleForWriting.write(Data("abc".utf8))
        // The writer stays open: without a deadline this read would wait forever.
        #expect(throws: APIError.badRequest("incomplete_body", "The request body ended before Content-Length bytes arrived.")) {
            try CGIRequest.readBody(
                environment: ["CONTENT_LENGTH": "10"],
                descriptor: pipe.fileHandleForReading.fileDescriptor,
                limits: .init(maxBodyBytes: 100, bodyDeadlineMilliseconds: 200))
        }
        withExtendedLifetime(pipe) {}
    }
}

@Suite struct CGIResponseTests {
    @Test func rendersAWholeJSONErrorResponse() {
        let text = String(decoding: CGIResponse.error(.methodNotAllowed(["GET", "PUT"])).rendered(), as: UTF8.self)
        #expect(
            text == """
                Status: 405 Method Not Allowed\r
                Content-Type: application/json; charset=utf-8\r
                Allow: GET, PUT\r
                Cache-Control: no-store\r
                X-Content-Type-Options: nosniff\r
                Content-Length: 80\r
                \r
                {"error":{"code":"method_not_allowed","message":"This route accepts GET, PUT."}}
                """)
    }

    @Test func headHasNoBodyAndSeveralCookiesStaySeparate() {
        var response = CGIResponse.json(200, ["ok": true])
        response.headers.append(("Set-Cookie", "a=1; HttpOnly"))
        response.headers.append(("Set-Cookie", "b=2; HttpOnly"))
        let text = String(decoding: response.rendered(forHead: true), as: UTF8.self)
        #expect(text.hasSuffix("\r\n\r\n"))
        #expect(text.contains("Set-Cookie: a=1; HttpOnly\r\nSet-Cookie: b=2; HttpOnly\r\n"))
        #expect(!text.contains(#""ok""#))
    }

    @Test func headerValuesCannotInjectHeaders() {
        let text = String(decoding: CGIResponse.redirect(to: "https://x/\r\nSet-Cookie: evil=1").rendered(), as: UTF8.self)
        #expect(!text.contains("\r\nSet-Cookie"))
    }
}

@Suite struct ConfigTests {
    @Test func concurrencyAndSandboxLatencyAreBounded() throws {
        let config = try Config.load(from: ["META_CONCURRENCY": "4", "SANDBOX_LATENCY_MS": "200"], workingDirectory: "/tmp")
        #expect(config.metaConcurrency == 4 && config.sandboxLatencyMilliseconds == 200)
        #expect(try Config.load(from: [:], workingDirectory: "/tmp").metaConcurrency == 8)
        for (name, value) in [
            ("META_CONCURRENCY", "0"), ("META_CONCURRENCY", "65"), ("SANDBOX_LATENCY_MS", "-1"), ("REFRESH_BUDGET_SECONDS", "0"),
        ] {
            #expect(throws: Config.Error.self, "\(name)=\(value)") { try Config.load(from: [name: value], workingDirectory: "/tmp") }
        }
    }

    let key = Data(Crypto.randomBytes(32)).base64EncodedString()

    @Test func defaultsWhenOptionalVariablesAreAbsent() throws {
        let config = try Config.load(from: [:], workingDirectory: "/srv/app")
        #expect(config.apiVersion == Config.defaultAPIVersion)
        #expect(config.graphURL == "https://graph.facebook.com")
        #expect(config.dialogURL == "https://www.facebook.com")
        #expect(config.scopes == ["ads_read", "business_management"])
        #expect(config.store == .files(root: "/srv/app/.data"))
        #expect(throws: Config.Error(variable: "META_APP_ID", problem: "is not set")) { try config.metaApp() }
        #expect(throws: Config.Error(variable: "COMPASS_JWT_SECRET", problem: "is not set")) { try config.sessionSecret() }
    }

    @Test(arguments: [
        ("META_API_VERSION", "18.0"), ("META_APP_ID", "abc"), ("META_GRAPH_URL", "ftp://x"),
        ("OAUTH_REDIRECT_BASE_URL", "joincompass.ai"), ("COMPASS_JWT_SECRET", "short"),
        ("CREDENTIALS_KEY", "bm90IDMyIGJ5dGVz"), ("STORE_URL", "redis://x"), ("STORE_URL", "file://relative"),
        ("LOG_LEVEL", "loud"), ("META_SCOPES", "ads read"), ("META_TIMEOUT_MS", "5"),
    ])
    func malformedValuesNameTheirVariable(name: String, value: String) {
        #expect {
            try Config.load(from: [name: value], workingDirectory: "/")
        } throws: { error in
            (error as? Config.Error)?.variable == name
                && (error as? Config.Error)?.apiError.message.contains(name) == true
        }
    }

    @Test func parsesStoresAndTrimsTrailingSlashes() throws {
        let config = try Config.load(
            from: [
                "STORE_URL": "etcd://10.0.0.1:2379,10.0.0.2:2379", "OAUTH_REDIRECT_BASE_URL": "https://joincompass.ai/",
                "CREDENTIALS_KEY": key, "META_API_VERSION": "v25.0",
            ], workingDirectory: "/")
        #expect(config.store == .etcd(endpoints: ["http://10.0.0.1:2379", "http://10.0.0.2:2379"], namespace: ""))
        #expect(
            try Config.load(from: ["STORE_URL": "etcd+https://e1:2379/compass/prod"], workingDirectory: "/").store
                == .etcd(endpoints: ["https://e1:2379"], namespace: "compass/prod/"))
        #expect(try config.callbackURL() == "https://joincompass.ai/api/connect/meta/callback")
        #expect(config.apiVersion == "v25.0")
        #expect(try config.credentialCipher().previous == nil)
    }
}

@Suite struct LoggerTests {
    @Test func writesOneJSONObjectPerLineWithRedaction() throws {
        let capture = LogCapture()
        let logger = capture.logger("callback")
        logger.setTenant("tenant_a")
        logger.redact("EAABsecrettokenvalue")
        logger.info(
            "graph_call",
            [
                "url": "https://graph/x?access_token=EAABsecrettokenvalue&client_secret=s3cr3t&zipcode=1",
                "note": .strings(["has EAABsecrettokenvalue inside"]), "count": 3,
            ])
        let line = try #require(capture.all.first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["event"] as? String == "graph_call")
        #expect(object["function"] as? String == "callback")
        #expect(object["tenant"] as? String == "tenant_a")
        #expect(object["level"] as? String == "info")
        #expect(object["count"] as? Int == 3)
        #expect(!line.contains("EAABsecrettokenvalue"))
        #expect(!line.contains("s3cr3t"))
        #expect(line.contains("zipcode=1"))
    }

    @Test func dropsLinesBelowTheLevel() {
        let capture = LogCapture()
        let logger = Logger(function: "x", level: .warn) { line in capture.logger().info("forwarded", ["line": .string(line)]) }
        logger.info("quiet")
        logger.debug("quieter")
        #expect(capture.all.isEmpty)
        logger.error("loud")
        #expect(capture.all.count == 1)
    }
}

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

@Suite struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONParser.parse(Array(#" {"a":[1,-2.5,3e2,true,false,null,"x\"y\\z\u00e9\ud83d\ude00"],"b":{}} "#.utf8))
        #expect(
            value
                == .object([
                    "a": .array([
                        .int(1), .double(-2.5), .double(300), .bool(true), .bool(false), .null,
                        .string("x\"y\\zé😀"),
                    ]), "b": .object([:]),
                ]))
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "tru", "\"\u{1}\"", "\"\\x\"", "\"\\ud800\"",
        "{\"a\":1,\"a\":2}", "1 2", "1e400", "[\"\u{7f}\"", "nul", "{\"a\" 1}",
    ])
    func rejectsMalformedText(text: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Array(text.utf8)) }
    }

    @Test func rejectsInvalidUTF8AndDeepNesting() {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
        let deep = Array(repeating: UInt8(ascii: "["), count: 100_000)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(deep) }
    }

    @Test func theWordAtATimeStringScanStopsWhereAByteByByteScanStops() throws {
        // Each kind of byte that ends a plain run (quote, backslash, control character), one
        // outside ASCII and two that are plain, at every place of a string longer than 16 bytes:
        // inside a word, at a word's first and last byte, in the tail.
        for special: [UInt8] in [[0x22], [0x5C, 0x6E], [0x01], [0x1F], [0xC3, 0xA9], [0x7F], [0x20, 0x21, 0x5B]] {
            for place in 0...24 {
                var text = Array(repeating: UInt8(ascii: "a"), count: 24)
                text.insert(contentsOf: special, at: place)
                let naiveEnd = text.firstIndex { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 } ?? text.count
                let scanned = text.withUnsafeBufferPointer { JSONParser.scanPlainString($0, from: 0) }
                #expect(scanned.end == naiveEnd, "\(special) at \(place)")
                #expect(scanned.isASCII == text[..<naiveEnd].allSatisfy { $0 < 0x80 }, "\(special) at \(place)")
                // And the parser and the tape read the string as they read it byte by byte.
                let literal = [0x22] + text + [0x22]
                let parsed = try? JSONParser.parse(literal)
                switch special {
                case [0x22], [0x01], [0x1F]: #expect(parsed == nil)
                case [0x5C, 0x6E]:
                    #expect(parsed == .string(String(decoding: text, as: UTF8.self).replacingOccurrences(of: "\\n", with: "\n")))
                default: #expect(parsed == .string(String(decoding: text, as: UTF8.self)))
                }
                let tape = JSONTape(literal)
                #expect((tape != nil) == (parsed != nil && special != [0x5C, 0x6E]), "\(special) at \(place)")
                if let tape { #expect(tape.tokens[0].isASCII == (special != [0xC3, 0xA9])) }
            }
        }
    }

    @Test func decimalsAreWrittenAsStringWritesThem() {
        var generator = SystemRandomNumberGenerator()
        let values: [Int64] =
            [0, 1, -1, 9, 10, -10, 99, 100, Int64.max, Int64.min, 1_795_820_995, -1_000_000_000_000]
            + (0..<1_000).map { _ in
                Int64.random(in: Int64.min...Int64.max, using: &generator) >> Int64.random(in: 0...62, using: &generator)
            }
        for value in values {
            var out: [UInt8] = [UInt8(ascii: "x")]
            out.append(decimal: value)
            #expect(out == Array("x\(value)".utf8))
        }
    }

    @Test func quotingWritesEveryByteAsTheParserReadsItBack() throws {
        // Every ASCII byte and a letter outside it, at every place of a string of 20 bytes.
        for byte in UInt8(0)...UInt8(0x7F) {
            for place in [0, 7, 8, 19] {
                var text = Array(repeating: UInt8(ascii: "z"), count: 19)
                text.insert(byte, at: place)
                text.append(contentsOf: "é".utf8)
                var out: [UInt8] = [UInt8(ascii: "[")]
                text.withUnsafeBufferPointer { JSONText.appendQuoted(utf8: $0, to: &out) }
                out.append(UInt8(ascii: "]"))
                #expect(try JSONParser.parse(out) == .array([.string(String(decoding: text, as: UTF8.self))]), "byte \(byte)")
                let escapes = byte == 0x22 || byte == 0x5C || byte == 0x0A || byte == 0x0D || byte == 0x09 ? 1 : byte < 0x20 ? 5 : 0
                #expect(out.count == text.count + escapes + 4, "byte \(byte)")
            }
        }
        // Longer than the chunks the literal is written in, with escapes across their ends.
        for unit in ["ab\"", "\u{1}xyz", "é\\\n"] {
            let text = String(repeating: unit, count: 5_000)
            var out: [UInt8] = []
            JSONText.appendQuoted(text, to: &out)
            #expect(try JSONParser.parse(out) == .string(text))
        }
    }

    @Test func serializationRoundTripsWithSortedKeys() throws {
        let value: JSONValue = .object(["z": .string("a\"b\n\u{1}é"), "a": .array([.int(-7), .double(0.5), .null])])
        let text = String(decoding: value.serialized, as: UTF8.self)
        #expect(text == #"{"a":[-7,0.5,null],"z":"a\"b\n\u0001é"}"#)
        #expect(try JSONParser.parse(value.serialized) == value)
    }
}
