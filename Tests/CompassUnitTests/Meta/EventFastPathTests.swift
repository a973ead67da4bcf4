import Foundation
import Testing

@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassTestSupport

/// The byte-level path against the general one: for every event the fast path takes, the
/// general path gives the same event, payload bytes included; the tape takes no text the parser
/// refuses.
@Suite struct EventFastPathTests {
    let now = Date(timeIntervalSince1970: 1_795_000_000)

    /// Both paths on the JSON text of `event`: the fast path's answer (nil when it declined) and
    /// the general path's.
    func both(_ text: [UInt8]) -> (fast: NormalizedEvent?, general: Result<NormalizedEvent, EventRejection>)? {
        guard let tape = JSONTape(text), let value = try? JSONParser.parse(text) else { return nil }
        return (EventFastPath.normalize(tape, at: 0, now: now), ConversionEvent.normalize(value, tenantId: "tenant_fast", now: now))
    }

    /// The benchmark's event (bench/events.py): the shape pipelines send.
    func benchmarkEvent(_ index: Int) -> JSONValue {
        .object([
            "eventName": "Purchase", "eventTime": .int(now.unixSeconds - 30), "actionSource": "website",
            "eventId": .string("bench-\(index)"),
            "eventSourceUrl": .string("https://shop.example/checkout/done?order=\(index)"),
            "userData": .object([
                "em": .array([.string("Customer.\(index)@Example.com ")]), "ph": .array([.string("+1 (650) 555-\(1000 + index)")]),
                "fn": .array(["Mary"]), "ln": .array(["Smith"]), "ct": .array(["Menlo Park"]), "st": .array(["ca"]),
                "zp": .array(["94025"]), "country": .array(["us"]), "external_id": .array([.string("crm-\(index)")]),
                "client_ip_address": "203.0.113.9", "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
                "fbp": .string("fb.1.1700000000000.\(index)"),
            ]),
            "customData": .object([
                "value": .double(19.99 + Double(index % 50)), "currency": "USD", "contentIds": .array([.string("sku-\(index)")]),
                "contentType": "product", "orderId": .string("order-\(index)"), "numItems": .int(Int64(1 + index % 3)),
            ]),
        ])
    }

    @Test func theBenchmarksEventTakesTheFastPathAndMatchesTheGeneralOne() throws {
        for index in 0..<50 {
            let pair = try #require(both(benchmarkEvent(index).serialized))
            let fast = try #require(pair.fast, "the everyday event was declined")
            guard case .success(let general) = pair.general else {
                Issue.record("\(pair.general)")
                return
            }
            #expect(String(decoding: general.payloadJSON, as: UTF8.self) == String(decoding: fast.payloadJSON, as: UTF8.self))
            #expect(general == fast)
        }
    }

    /// Per key, everyday values first (taken 85 % of the time), then values on the rules' edges:
    /// whitespace, case, digests, Unicode, bad values.
    static let pools: [String: (good: [JSONValue], odd: [JSONValue])] = [
        "em": (
            [
                "A@B.co", " x@y.z ", .array(["a@b.co", "A@B.CO "]), "8D969EEF6ECAD3C29A3A629280E686CF0C3F5D5A86AFF3CA12020C923ADC6C92",
                // A value and its own digest: one entry.
                .array(["a@b.co", .string(Hex.encode(Crypto.sha256("a@b.co")))]),
            ],
            [
                "bad", "a@b", "@b.co", "a b@c.de", "ü@ex.com", .array([]), .int(5), .array(["a@b.co", .int(3)]),
                // Meta's Parameter Builder form, an MD5 with its suffix, a digest with another suffix.
                .string(Hex.encode(Crypto.sha256("a@b.co")).uppercased() + ".AQ"), "5d41402abc4b2a76b9719d911017c592.AQ",
                .string(Hex.encode(Crypto.sha256("a@b.co")) + ".x"),
            ]
        ),
        "ph": (["+1 (650) 555-0000", "0044 20 7946 0000", .array(["+1 650 555 0000", "16505550000"])], ["12", "phone", "١٢٣٤٥٦٧٨"]),
        "fn": (["Mary", "  Mary-Ann ", "MARY", .string(String(repeating: "a-", count: 64))], ["Zoë", "123", "ÉLODIE", " "]),
        "ln": (["Smith", "O'Neil"], ["Ñúñez"]),
        "ct": (["Menlo Park"], ["São Paulo", "..."]), "st": (["California", "ca", "CA", " new york "], ["Bavaria", "9"]),
        "zp": (["94025-1234", "94025", " 9 40 25", "9402-51234", "940 25 1234"], ["SW1A 1AA", "-"]),
        "country": (["US", "United States", "us"], ["Côte d'Ivoire", "zz", "u s"]),
        "external_id": (
            [
                "crm-1", " ID ", "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
                "0123456789abcdef0123456789abcdef.x",
            ], ["", "  ", "0123456789abcdef0123456789abcdef0123.AQ"]
        ),
        "ge": (["F", "male"], ["x"]), "db": (["1990-01-02", "02/03/1990"], ["13/13/1990"]), "fi": (["M"], []), "doby": (["1990"], ["90"]),
        "client_ip_address": (
            ["203.0.113.9", "::1", " 10.0.0.1 ", "0.0.0.0", "255.255.255.255"],
            ["bad-ip", "01.2.3.4", "256.1.1.1", "1.2.3.4.", "1..2.3", "1.2.3"]
        ), "client_user_agent": (["Mozilla/5.0"], ["", "  "]),
        "fbp": (["fb.1.1700000000000.1"], []), "fbc": (["fb.1.1700000000000.AbC"], []), "lead_id": (["456"], [.int(123)]),
        "madid": (["ab-cd"], []), "nope": ([], ["x"]), "whatsapp_business_account_id": (["1029384756"], [.int(5)]),
    ]

    static let customPools: [String: (good: [JSONValue], odd: [JSONValue])] = [
        "value": ([.double(19.99), .double(20.0), .int(20), .double(-0.5), .double(1.5e-7)], ["20", .double(1e13), .double(1e16)]),
        "currency": (["USD", "us", " eur "], ["ÉUR", .int(3)]),
        "contentIds": ([.array(["a", .int(5)]), .array([.int(1_234_567_890_123_456_789)])], [.array([.double(5.0)]), "a"]),
        "content_ids": ([.array(["b"])], []), "contentType": (["product", "hotel"], ["bogus"]), "orderId": (["o-1", .int(7)], []),
        "numItems": ([.int(2), .double(2.5)], ["x"]), "predictedLtv": ([.double(1.5)], []), "foo": (["bar", .bool(true), .null, "ü"], []),
        "nested": ([], [.object(["a": .int(1)])]), "contents": ([], [.array([.object(["id": "a", "quantity": .int(1)])])]),
        "deliveryCategory": (["curbside"], ["drone"]), "netRevenue": ([.double(9.5), .int(3)], ["x"]), "itemNumber": (["n-1"], []),
        // Names in both forms (a name twice), a name with capitals that has no other form, and
        // snake_case names without a rule of their own.
        "net_revenue": ([.int(4)], []), "delivery_category": (["in_store"], []), "OrderRef": (["r-1", .int(2)], []),
        "search_string": (["s"], []), "Status": ([.bool(false)], []),
    ]

    func generated(_ random: inout SeededGenerator) -> JSONValue {
        func pick<T>(_ values: [T]) -> T { values[Int(random.next() % UInt64(values.count))] }
        func chance(_ percent: UInt64) -> Bool { random.next() % 100 < percent }
        func value(_ pool: (good: [JSONValue], odd: [JSONValue])) -> JSONValue? {
            if !pool.good.isEmpty && (pool.odd.isEmpty || chance(85)) { return pick(pool.good) }
            return pool.odd.isEmpty ? nil : pick(pool.odd)
        }
        let time = now.unixSeconds
        var event: [String: JSONValue] = [:]
        event[pick(["eventName", "event_name"])] = chance(97) ? value((["Purchase", "Lead", " Lead "], ["", "Äpfel", .int(5)])) : nil
        event[pick(["eventTime", "event_time"])] =
            chance(97)
            ? value(
                (
                    [.int(time - 100), .int(time + 30), .int(time - 6 * 86_400)],
                    [
                        .int(time + 1000), .int(time - 8 * 86_400), .int(time - 63 * 86_400), .int(time * 1000), "123",
                        .double(Double(time - 5)), .double(Double(time) - 0.5),
                    ]
                )) : nil
        event[pick(["actionSource", "action_source"])] =
            chance(97)
            ? value((["website", "website", "email", "physical_store", "system_generated"], ["app", "business_messaging", "bogus"])) : nil
        event[pick(["eventId", "event_id"])] =
            chance(90)
            ? value((["e-1", " e-2 "], ["", .string(String(repeating: "x", count: 300)), .int(12), "é-3"])) : nil
        if chance(90) {
            event[pick(["eventSourceUrl", "event_source_url"])] = value(
                (
                    [
                        "https://shop.example/x?fbclid=AbC_1", "http://a.b", " https://s.example/p?a=1&fbclid=Z9 ",
                        "https://s.example/p#fbclid=no",
                    ],
                    ["ftp://x", .null, "https://s.example/ü"]
                ))
        }
        if chance(97) {
            var user: [String: JSONValue] = [:]
            for (key, pool) in Self.pools.sorted(by: { $0.key < $1.key })
            where chance(key == "client_user_agent" ? 95 : key == "nope" ? 2 : 30) { user[key] = value(pool) }
            event[pick(["userData", "user_data"])] = chance(98) ? .object(user) : "not an object"
        }
        if chance(85) {
            var custom: [String: JSONValue] = [:]
            for (key, pool) in Self.customPools.sorted(by: { $0.key < $1.key }) where chance(["nested", "contents"].contains(key) ? 3 : 35)
            { custom[key] = value(pool) }
            event[pick(["customData", "custom_data"])] = .object(custom)
        }
        if chance(3) { event["optOut"] = .bool(true) }
        if chance(2) { event["surprise"] = "x" }
        return .object(event)
    }

    /// Found by the `event` fuzz target: a hashed key whose text is not all ASCII but begins with
    /// 32 hex digits and a dot looks hashed to the general path, which refuses it; the fast path
    /// took it as plain text. It now declines, and the general path decides.
    @Test func hexDigitsAndADotBeforeTextThatIsNotASCIIAreTheGeneralPathsToJudge() throws {
        // The fuzzer's input, kept in its corpus (Fuzz/corpus/event/hex-prefix-non-ascii.json).
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus/event/hex-prefix-non-ascii.json")
        let found = try JSONParser.parse(Array(try Data(contentsOf: url)))
        let event = try #require(found["events"]?.array?.first)
        let fuzzNow = Date(timeIntervalSince1970: 1_790_000_000)  // the fuzz target's clock
        let tape = try #require(JSONTape(event.serialized))
        #expect(EventFastPath.normalize(tape, at: 0, now: fuzzNow) == nil)
        guard case .failure(let rejection) = ConversionEvent.normalize(event, tenantId: "tenant_fast", now: fuzzNow) else {
            Issue.record("the general path took it")
            return
        }
        #expect(rejection.code == "invalid_hash")
    }

    @Test func onGeneratedEventsTheFastPathAgreesWithEveryRule() throws {
        var random = SeededGenerator(state: 17)
        var taken = 0
        var compared = 0
        for round in 0..<10_000 {
            let text = generated(&random).serialized
            guard let pair = both(text) else { continue }
            compared += 1
            guard let fast = pair.fast else { continue }
            taken += 1
            guard case .success(let general) = pair.general, general == fast else {
                Issue.record(
                    "round \(round): \(String(decoding: text, as: UTF8.self))\nfast: \(String(decoding: fast.payloadJSON, as: UTF8.self))\ngeneral: \(pair.general)"
                )
                return
            }
        }
        // Both outcomes are exercised: many events taken, many declined.
        #expect(compared == 10_000)
        #expect(taken > 400 && taken < compared - 1_000, "taken \(taken) of \(compared)")
    }

    @Test func theTapeTakesNoTextTheParserRefusesAndReadsTheSameValues() throws {
        var random = SeededGenerator(state: 99)
        let seeds: [[UInt8]] = [
            benchmarkEvent(1).serialized, Array(#"{"a":[1,-0,2.5e3,true,null,"x\u0041"],"b":{"c":"ü"}}"#.utf8),
            Array(#"{"events":[{"eventName":"Lead"},{"x":1e999}]}"#.utf8),
        ]
        var accepted = 0
        for round in 0..<20_000 {
            var text = seeds[round % seeds.count]
            for _ in 0..<(1 + Int(random.next() % 3)) where !text.isEmpty {
                let at = Int(random.next() % UInt64(text.count))
                switch random.next() % 4 {
                case 0: text.remove(at: at)
                case 1:
                    let structural = Array(#"{}[]",:\ 0-e."#.utf8)
                    text.insert(structural[Int(random.next() % UInt64(structural.count))], at: at)
                case 2: text[at] = UInt8(truncatingIfNeeded: random.next())
                default: text.insert(contentsOf: text[at..<min(text.count, at + 8)], at: at)
                }
            }
            guard let tape = JSONTape(text) else { continue }
            accepted += 1
            let parsed = try? JSONParser.parse(text)
            #expect(parsed != nil, "the tape took what the parser refuses: \(text)")
            guard let parsed else { return }
            #expect((try? JSONParser.parse(tape.valueBytes(0))) == parsed)
        }
        #expect(accepted > 1_000, "accepted \(accepted)")
        // What it leaves to the parser: escapes, names outside ASCII, repeated names.
        for declined in [#"{"a":"\n"}"#, #"{"é":1}"#, #"{"a":1,"a":2}"#, #"{"a":1e999}"#, "[1,]", #"{"a":"\#u{1}"}"#] {
            #expect(JSONTape(Array(declined.utf8)) == nil, "\(declined)")
        }
    }
}
