import Foundation
import Testing

@testable import CompassHandlers
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassTestSupport

/// `JSONCoding` (the one codec of every record and answer) against Foundation's `JSONDecoder`
/// and `JSONEncoder` with the settings the project used before it: the same bytes for every
/// record, the same value (or the same refusal) for every mutation of one, the same dates.
@Suite struct JSONCodingTests {
    static let at = Date(timeIntervalSince1970: 1_795_820_995)

    static var foundationEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static var foundationDecoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    static var integrations: [Integration] {
        var plain = Integration(
            tenantId: "tenant_a", status: .connected, metaUserId: "10001",
            config: .init(), grantedScopes: ["ads_management"], missingScopes: [], connectedAt: at, updatedAt: at)
        var full = Integration(
            tenantId: "tenant_b", provider: "meta", status: .needsReauth, statusReason: "token \"expired\" é",
            metaUserId: "10002",
            config: .init(
                adAccounts: [
                    AdAccount(
                        id: "act_1", accountId: "1", name: "Shop", currency: "EUR", status: 1,
                        business: .init(id: "b1", name: "Biz")),
                    AdAccount(id: "act_2"),
                ],
                adAccountId: "act_1", pixelId: "2000101", testEventCode: "TEST123"),
            grantedScopes: ["ads_management", "business_management"], missingScopes: ["ads_read"],
            connectedAt: Date(timeIntervalSince1970: 0), updatedAt: Date(timeIntervalSince1970: 4_102_444_799),
            lastRefresh: RefreshOutcome(outcome: "renewed", at: at, detail: "ok"))
        full.tokenType = "system_user"
        full.clientBusinessId = "b1"
        full.pixelProblem = PixelProblem(reason: "pixel_unavailable", since: Date(timeIntervalSince1970: 951_782_400))  // 2000-02-29
        plain.lastRefresh = RefreshOutcome(outcome: "checked", at: at, detail: nil)
        return [plain, full]
    }

    /// What Foundation makes of the bytes, and what `JSON.decode` makes of them.
    static func both<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) -> (foundation: T?, ours: T?) {
        (try? foundationDecoder.decode(type, from: Data(bytes)), try? JSON.decode(type, from: bytes))
    }

    @Test func everyRecordIsWrittenAndReadAsFoundationDoes() throws {
        func check<T: Codable & Equatable>(_ record: T) throws {
            let ours = JSON.encode(record)
            #expect(String(decoding: ours, as: UTF8.self) == String(decoding: try Self.foundationEncoder.encode(record), as: UTF8.self))
            let (foundation, read) = Self.both(T.self, ours)
            #expect(read == record && foundation == record, "\(T.self)")
        }
        for integration in Self.integrations { try check(integration) }
        try check(RecordRoundTripTests.credential)
        try check(RecordRoundTripTests.outboxEntry)
        try check(RecordRoundTripTests.quality)
        try check(RecordRoundTripTests.stats)
        try check(RecordRoundTripTests.notice)
        let lastRun = #"{"budgetSpent":false,"durationMs":12,"figures":{"tokens.renewed":2},"metaUsagePercent":6.5,"startedAt":1795820995}"#
        try check(try JSON.decode(LastRun.self, from: Array(lastRun.utf8)))
    }

    @Test func everyMutationIsReadAsFoundationReadsIt() throws {
        let replacements: [JSONValue] = [
            .null, .int(1), .int(-7), .double(1.5), .double(2.0), .string("x"), .string("2026-11-28T03:26:50+00:00"),
            .string("2026-11-28T03:26:50+02:00"), .string("2026-11-28T03:26:50.5Z"), .string("2026-02-29T00:00:00Z"),
            .string("2024-02-29T23:59:59Z"), .array([]), .array([.string("a")]), .object([:]), .bool(true),
        ]
        var read = 0
        var refused = 0
        func check<T: Codable & Equatable>(_ record: T) throws {
            let tree = try JSONParser.parse(JSON.encode(record))
            for mutated in Self.mutations(of: tree, replacements: replacements) {
                let (foundation, ours) = Self.both(T.self, mutated.serialized)
                #expect(ours == foundation, "\(T.self): \(String(decoding: mutated.serialized, as: UTF8.self))")
                if ours == nil { refused += 1 } else { read += 1 }
            }
        }
        for integration in Self.integrations { try check(integration) }
        try check(RecordRoundTripTests.credential)
        try check(RecordRoundTripTests.quality)
        try check(RecordRoundTripTests.notice)
        // Both kinds happen: the test reaches what is read and what is refused.
        #expect(read > 100 && refused > 100)
    }

    /// A value written by hand through every kind of container: nested ones filled after their
    /// parent went on, a key written twice, super encoders, a single value holding an object or
    /// an array, an encoder asked for nothing, and scalars of every kind the records do not use.
    private struct ByHand: Encodable {
        enum Key: String, CodingKey { case a, b, c, d, e, f, g, h, i, j, k, l, m, n }
        struct Wrapped: Encodable {
            func encode(to encoder: any Encoder) throws {
                var single = encoder.singleValueContainer()
                try single.encode(["y": 2, "x": 1])
            }
        }
        struct Empty: Encodable {
            func encode(to encoder: any Encoder) throws {}
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode("first", forKey: .b)
            var nested = container.nestedContainer(keyedBy: Key.self, forKey: .a)
            try nested.encode(Float(1.5), forKey: .c)
            try nested.encode(Data([1, 2, 250]), forKey: .d)
            var list = container.nestedUnkeyedContainer(forKey: .e)
            try list.encode(UInt8(7))
            try list.encodeNil()
            var inner = list.nestedContainer(keyedBy: Key.self)
            try nested.encode(Int32(-4), forKey: .e)
            try inner.encode(true, forKey: .a)
            var deeper = list.nestedUnkeyedContainer()
            try deeper.encode("quote \" é")
            try container.encode("second", forKey: .b)
            var single = container.superEncoder().singleValueContainer()
            try single.encode([1, 2])
            _ = container.superEncoder(forKey: .f)
            try container.encode(Wrapped(), forKey: .g)
            try container.encode(Empty(), forKey: .h)
            try container.encode(["z": [1.25, 100, -0.5]], forKey: .i)
            try container.encodeNil(forKey: .j)
            try container.encode(Date(timeIntervalSince1970: 951_827_696), forKey: .k)
            try container.encode(Int16(-300), forKey: .l)
            try container.encode(UInt64(1) << 40, forKey: .m)
            try container.encode([Wrapped(), Wrapped()], forKey: .n)
        }
    }

    @Test func everyKindOfContainerIsWrittenAsFoundationWritesIt() throws {
        let foundation = try Self.foundationEncoder.encode(ByHand())
        #expect(String(decoding: JSON.encode(ByHand()), as: UTF8.self) == String(decoding: foundation, as: UTF8.self))
        #expect(JSON.encode(ByHand.Empty()) == Array("{}".utf8))
        #expect(JSON.encode(ByHand.Wrapped()) == Array(#"{"x":1,"y":2}"#.utf8))
        #expect(JSON.encode([[String: Int]]()) == Array("[]".utf8))
    }

    /// What JSON cannot hold is refused with the path to it, and `JSON.encode` writes `null`
    /// for the whole rather than a part.
    @Test func whatJSONCannotHoldIsRefusedWithItsPath() throws {
        struct Holder: Encodable {
            var values: [String: [Double]]
            var big: UInt64 = 1
        }
        func path<T: Encodable>(_ value: T) -> [String] {
            let result = Result { () throws -> [UInt8] in try JSONCoding.encode(value) }
            guard case .failure(let error) = result, case .invalidValue(_, let context) = error as? EncodingError else {
                return ["not refused"]
            }
            return context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }
        }
        #expect(path(Holder(values: ["a": [1, .infinity]])) == ["values", "a", "1"])
        #expect(path(Holder(values: [:], big: .max)) == ["big"])
        #expect(path([Holder(values: ["n": [.nan]])]) == ["0", "values", "n", "0"])
        #expect(JSON.encode(Holder(values: ["a": [.infinity]])) == Array("null".utf8))
    }

    @Test func valuesOfEveryKindAsFoundationWritesThem() throws {
        let doubles: [Double] = [0, 100, -3, 6.2, 0.1, 99.5, 1e-7, 123_456.789, 1e14]
        #expect(
            String(decoding: JSON.encode(doubles), as: UTF8.self)
                == String(decoding: try Self.foundationEncoder.encode(doubles), as: UTF8.self))
        let texts = ["a/b", "quote \" and \\", "line\nbreak\ttab", "é 日本 😀", ""]
        #expect(
            String(decoding: JSON.encode(texts), as: UTF8.self) == String(decoding: try Self.foundationEncoder.encode(texts), as: UTF8.self)
        )
        let nested: [String: [Int?]] = ["b": [1, nil, 3], "a": []]
        #expect(
            String(decoding: JSON.encode(nested), as: UTF8.self)
                == String(decoding: try Self.foundationEncoder.encode(nested), as: UTF8.self))
        #expect(try JSON.decode([String: [Int?]].self, from: JSON.encode(nested)) == nested)
        #expect(try JSON.decode(Int8.self, from: Array("127".utf8)) == 127)
        #expect(throws: (any Error).self) { try JSON.decode(Int8.self, from: Array("128".utf8)) }
        // Every standard integer type, told by its metatype: written and read as a number.
        #expect(String(decoding: JSON.encode([Int128(-5)]), as: UTF8.self) == "[-5]")
        #expect(String(decoding: JSON.encode([UInt16(7), 8]), as: UTF8.self) == "[7,8]")
        #expect(try JSON.decode([UInt128].self, from: Array("[9]".utf8)) == [9])
        #expect(try JSON.decode(Int64.self, from: Array("-9000000000".utf8)) == -9_000_000_000)
        #expect(try JSON.decode(Float.self, from: Array("1.5".utf8)) == 1.5)
        #expect(try JSON.decode(Data.self, from: Array(#""AQL6""#.utf8)) == Data([1, 2, 250]))
        #expect(throws: (any Error).self) { try JSON.decode(String.self, from: Array("null".utf8)) }
        #expect(try JSON.decode(String?.self, from: Array("null".utf8)) == nil)
    }

    @Test func datesAsFoundationWritesAndReadsThem() throws {
        #expect(JSONCoding.date(iso8601: "1970-01-01T00:00:00Z") == Date(timeIntervalSince1970: 0))
        #expect(JSONCoding.date(iso8601: "2000-02-29T12:34:56Z") == Date(timeIntervalSince1970: 951_827_696))
        for text in [
            "2001-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-28T24:00:00Z", "2026-11-28 03:26:50Z", "2026-11-28T03:26:5aZ",
            "1969-12-31T23:59:59Z", "2026-11-28T03:26:50+02:00", "2026-11-28T03:26:50.5Z", "yesterday",
        ] {
            let foundation = try? Self.foundationDecoder.decode([Date].self, from: Data("[\"\(text)\"]".utf8)).first
            #expect(JSONCoding.date(iso8601: text) == foundation, "\(text)")
        }
        // Every day of four years, and days before 1970, written as Foundation writes them.
        let encoder = Self.foundationEncoder
        for day in Array(stride(from: 18_000, to: 19_461, by: 1)) + [-1, -365, -25_567, 0] {
            let date = Date(timeIntervalSince1970: TimeInterval(day * 86_400 + 45_296) + 0.75)
            let text = try JSONParser.parse(Array(encoder.encode([date]))).array?.first?.string
            #expect(text == JSONCoding.iso8601(date), "\(day)")
            #expect(text.flatMap(JSONCoding.date(iso8601:)) == Date(timeIntervalSince1970: TimeInterval(day * 86_400 + 45_296)))
        }
    }

    /// The tree with one member removed or replaced, for every member at every depth.
    static func mutations(of value: JSONValue, replacements: [JSONValue]) -> [JSONValue] {
        switch value {
        case .object(let members):
            var out: [JSONValue] = []
            for (key, member) in members {
                var removed = members
                removed[key] = nil
                out.append(.object(removed))
                for replacement in replacements {
                    var changed = members
                    changed[key] = replacement
                    out.append(.object(changed))
                }
                for inner in mutations(of: member, replacements: replacements) {
                    var changed = members
                    changed[key] = inner
                    out.append(.object(changed))
                }
            }
            return out
        case .array(let items):
            return items.indices.flatMap { index in
                mutations(of: items[index], replacements: replacements).map { inner in
                    var changed = items
                    changed[index] = inner
                    return JSONValue.array(changed)
                }
            }
        default:
            return []
        }
    }
}
