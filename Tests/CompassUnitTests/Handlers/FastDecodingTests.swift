import Foundation
import Testing

@testable import CompassHandlers
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassTestSupport

/// The records' own readers (`JSONFastDecodable`) against `JSONDecoder`: on every record they
/// take they give what `JSONDecoder` gives, and they take nothing `JSONDecoder` refuses.
@Suite struct FastDecodingTests {
    static let at = Date(timeIntervalSince1970: 1_795_820_995)

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

    /// What `JSONDecoder` makes of the bytes, and what the fast reader makes of them.
    static func both(_ bytes: [UInt8]) -> (slow: Integration?, fast: Integration?) {
        let slow = try? JSON.decoder().decode(Integration.self, from: Data(bytes))
        let fast = (try? JSONParser.parse(bytes)).flatMap(Integration.init(fastJSON:))
        return (slow, fast)
    }

    @Test func recordsAreReadAsJSONDecoderReadsThem() throws {
        for integration in Self.integrations {
            let bytes = JSON.encode(integration)
            let (slow, fast) = Self.both(bytes)
            #expect(fast != nil, "the reader declined a record as the connector writes it")
            #expect(fast == slow && fast == integration)
            #expect(try JSON.decode(Integration.self, from: bytes) == integration)
        }
    }

    @Test func everyMutationIsReadAsJSONDecoderReadsItOrLeftToIt() throws {
        let replacements: [JSONValue] = [
            .null, .int(1), .double(1.5), .string("x"), .string("2026-11-28T03:26:50+00:00"),
            .string("2026-11-28T03:26:50.5Z"), .string("2026-02-29T00:00:00Z"), .string("2024-02-29T23:59:59Z"),
            .array([]), .array([.string("a")]), .object([:]), .bool(true),
        ]
        var compared = 0
        var declined = 0
        for integration in Self.integrations {
            let tree = try JSONParser.parse(JSON.encode(integration))
            for mutated in Self.mutations(of: tree, replacements: replacements) {
                let (slow, fast) = Self.both(mutated.serialized)
                if let fast {
                    #expect(fast == slow, "\(String(decoding: mutated.serialized, as: UTF8.self))")
                    compared += 1
                } else {
                    declined += 1
                }
                if slow == nil { #expect(fast == nil) }
            }
        }
        // Both kinds happen: the test reaches what the reader takes and what it leaves.
        #expect(compared > 50 && declined > 50)
    }

    @Test func datesOnlyInTheFormTheConnectorWrites() {
        #expect(JSONFields.date(iso8601: "1970-01-01T00:00:00Z") == Date(timeIntervalSince1970: 0))
        #expect(JSONFields.date(iso8601: "2000-02-29T12:34:56Z") == Date(timeIntervalSince1970: 951_827_696))
        for text in [
            "2001-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-28T24:00:00Z", "2026-11-28 03:26:50Z",
            "2026-11-28T03:26:50+00:00", "2026-11-28T03:26:5aZ", "1969-12-31T23:59:59Z",
        ] {
            #expect(JSONFields.date(iso8601: text) == nil, "\(text)")
        }
        // Every day of four years, as the encoder writes it.
        let encoder = JSON.encoder()
        for day in stride(from: 18_000, to: 19_461, by: 1) {
            let date = Date(timeIntervalSince1970: TimeInterval(day * 86_400 + 45_296))
            let text = try? JSONParser.parse(Array(encoder.encode([date]))).array?.first?.string
            #expect(text.flatMap(JSONFields.date(iso8601:)) == date)
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
