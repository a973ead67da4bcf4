import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// Hostile and broken input, to every handler as a CGI host runs it: each gets a clean 4xx (or
/// the defined redirect) in bounded time, never a trap, a hang or a stack trace.
@Suite(.serialized) struct HostileInputTests {
    /// Every built function of functions.json, with the method that reads a body when it has one.
    static let manifest =
        (try? FunctionsManifest.load(path: FunctionsManifestTests.root.appendingPathComponent("functions.json").path))?
        .functions.filter { $0.planned != true } ?? []
    static let functions = manifest.map(\.executable)
    static let method = Dictionary(uniqueKeysWithValues: manifest.map { ($0.executable, $0.methods.last { $0 != "GET" } ?? $0.methods[0]) })
    static let path = Dictionary(uniqueKeysWithValues: manifest.map { ($0.executable, $0.paths[0]) })

    func check(
        _ response: CGIWorld.Response, _ label: String, allowed: ClosedRange<Int> = 400...499,
        redirectOK: Bool = false, elapsed: TimeInterval
    ) {
        if redirectOK && response.status == 302 {
            #expect(response.header("Location")?.hasPrefix(World.base + "/settings/integrations?error=") == true, "\(label)")
        } else {
            #expect(allowed.contains(response.status), "\(label): status \(response.status) \(response.raw.prefix(200))")
            #expect(response.errorCode != nil, "\(label): no JSON error body")
        }
        // A hang would never end; a generous bound keeps a loaded machine from failing a good run.
        #expect(elapsed < 20, "\(label) took \(elapsed) s")
        #expect(!response.stderr.contains("Fatal error") && !response.stderr.contains("Backtrace"), "\(label)")
        #expect(!response.body.contains("Stack") && !response.body.contains(".swift:"), "\(label)")
    }

    func timed(_ body: () throws -> CGIWorld.Response) rethrows -> (CGIWorld.Response, TimeInterval) {
        let started = Date()
        let response = try body()
        return (response, Date().timeIntervalSince(started))
    }

    @Test func brokenBodiesAndLengths() throws {
        #expect(Self.functions.count >= 7, "functions.json could not be read")
        let world = try CGIWorld()
        world.extra["CRON_SECRET"] = "cron-secret-0123456789"
        let deep = String(repeating: "[", count: 300_000)
        let invalidUTF8 = String(decoding: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D], as: UTF8.self)
        for function in Self.functions {
            let method = Self.method[function]!
            let path = Self.path[function]!
            let redirect = function == "callback"
            // Every route, GET included, reads exactly CONTENT_LENGTH bytes before it answers (a
            // CGI host hands a GET's body over too): each broken length has its own answer.
            for (label, body, length, code) in [
                ("short body", "{\"a\":", "500", "incomplete_body"),
                ("negative length", "", "-1", "bad_content_length"),
                ("absurd length", "", "99999999999999999999999", "bad_content_length"),
                ("huge length", "", "900000000", "body_too_large"),
            ] {
                let (response, elapsed) = try timed { try world.run(function, method, path, body: body, contentLength: length) }
                check(response, "\(function) \(label)", allowed: 400...413, elapsed: elapsed)
                #expect(response.errorCode == code, "\(function) \(label): \(response.body)")
                #expect(response.status == (code == "body_too_large" ? 413 : 400), "\(function) \(label)")
            }
            // disconnect takes no body: whatever is sent is read (bounded) and ignored.
            if method != "GET" && function != "disconnect" {
                for (label, body) in [("deep nesting", deep), ("invalid UTF-8", invalidUTF8), ("not JSON", "<xml/>")] {
                    let (response, elapsed) = try timed { try world.run(function, method, path, body: body) }
                    check(response, "\(function) \(label)", allowed: 400...415, redirectOK: redirect, elapsed: elapsed)
                }
            }
            let (wrong, elapsed) = try timed { try world.run(function, "PATCH", path) }
            #expect(wrong.status == 405 && wrong.header("Allow") != nil, "\(function) wrong method")
            #expect(elapsed < 20)
            let (noMethod, _) = try timed {
                try world.run(function, "GET", path, environment: ["REQUEST_METHOD": nil, "GATEWAY_INTERFACE": "CGI/1.1"])
            }
            #expect(noMethod.status == 400, "\(function) missing REQUEST_METHOD")
        }
    }

    @Test func hostileSessionTokens() throws {
        let world = try CGIWorld()
        let secret = Array(World.jwtSecret.utf8)
        func sign(_ header: String, _ claims: String, key: [UInt8]? = nil) -> String {
            let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(claims.utf8))
            return input + "." + Base64URL.encode(Crypto.hmacSHA256(key: key ?? secret, message: Array(input.utf8)))
        }
        let exp = Date().unixSeconds + 600
        let good = sign(#"{"alg":"HS256"}"#, #"{"sub":"t","exp":\#(exp)}"#)
        let tokens = [
            "", "a", String(good.dropLast(20)), String(repeating: "A", count: 100_000),
            Base64URL.encode(Array(#"{"alg":"none"}"#.utf8)) + "." + Base64URL.encode(Array(#"{"sub":"t","exp":\#(exp)}"#.utf8)) + ".",
            sign(#"{"alg":"HS512"}"#, #"{"sub":"t","exp":\#(exp)}"#), sign(#"{"alg":"RS256"}"#, #"{"sub":"t","exp":\#(exp)}"#),
            sign(#"{"alg":"HS256"}"#, #"{"sub":"t","exp":\#(exp)}"#, key: Array("wrong-secret-wrong-secret-wrong-secret".utf8)),
            sign(#"{"alg":"HS256"}"#, #"{"sub":"t","exp":"tomorrow"}"#), sign(#"{"alg":"HS256"}"#, #"{"sub":"../../etc","exp":\#(exp)}"#),
            sign(#"{"alg":"HS256"}"#, #"{"sub":"a\u0000b","exp":\#(exp)}"#), sign(#"{"alg":"HS256"}"#, #"{"sub":"t","exp":1e308}"#),
            sign(#"{"alg":"HS256"}"#, #"{"sub":"t"}"#),
        ]
        for function in ["connect", "disconnect", "settings", "send-event"] {
            for (index, token) in tokens.enumerated() {
                let (response, elapsed) = try timed {
                    try world.run(
                        function, Self.method[function]!, Self.path[function]!, tenant: nil,
                        headers: ["Authorization": "Bearer " + token], body: function == "settings" ? "{}" : "")
                }
                check(response, "\(function) token \(index)", allowed: 400...401, elapsed: elapsed)
            }
        }
        let (callback, _) = try timed {
            try world.run(
                "callback", "GET", "/api/connect/meta/callback?code=x&state=y", tenant: nil,
                headers: ["Cookie": "compass_session=" + tokens[5]])
        }
        #expect(callback.header("Location") == World.base + "/settings/integrations?error=meta_state_invalid")
    }

    @Test func hostileIdsAndQueries() throws {
        let world = try CGIWorld()
        _ = try world.run("callback", "GET", "/api/connect/meta/callback?" + world.approvedCallbackQuery(), cookie: true)
        let attempts: [(String, String, String, String)] = [
            ("settings", "GET", "/api/connect/meta/settings?adAccountId=act_1%2F..%2F..%2Fetc", ""),
            ("settings", "GET", "/api/connect/meta/settings?adAccountId=act_1%0D%0ASet-Cookie:x", ""),
            ("settings", "GET", "/api/connect/meta/settings?adAccountId=%ZZ%", ""),
            ("settings", "PUT", "/api/connect/meta/settings", #"{"adAccountId":"act_1000001","pixelId":"../../../etc/passwd"}"#),
            ("settings", "PUT", "/api/connect/meta/settings", #"{"adAccountId":"act_1000001\u0000"}"#),
            ("settings", "PUT", "/api/connect/meta/settings", #"{"testEventCode":"\r\nX-Evil: 1"}"#),
            (
                "send-event", "POST", "/api/connect/meta/events",
                #"{"events":[{"eventName":"Lead","eventTime":1e308,"actionSource":"email","userData":{"em":"a@b.co"}}]}"#
            ),
            (
                "send-event", "POST", "/api/connect/meta/events",
                #"{"events":[{"eventName":"Lead","eventTime":-5,"actionSource":"email","userData":{"em":"a@b.co"},"customData":{"value":"NaN"}}]}"#
            ),
        ]
        for (function, method, target, body) in attempts {
            let (response, elapsed) = try timed { try world.run(function, method, target, body: body) }
            check(response, "\(function) \(target) \(body.prefix(40))", allowed: 400...422, elapsed: elapsed)
            #expect(!response.raw.contains("X-Evil") && !response.raw.contains("Set-Cookie:x"))
        }
        let many = "{\"events\":[" + Array(repeating: "{}", count: 10_001).joined(separator: ",") + "]}"
        let (tooMany, elapsed) = try timed { try world.run("send-event", "POST", "/api/connect/meta/events", body: many) }
        check(tooMany, "too many events", allowed: 413...413, elapsed: elapsed)
        for query in [
            "state=a&state=b&code=x", "code=&state=", "error=&error=x", "%00=%00",
            "state=" + String(repeating: "x", count: 5000) + "&code=1",
        ] {
            let (response, _) = try timed { try world.run("callback", "GET", "/api/connect/meta/callback?" + query, cookie: true) }
            #expect(response.status == 302, "callback \(query.prefix(30))")
            #expect(response.header("Location")?.hasPrefix(World.base + "/settings/integrations?") == true)
        }
    }
}
