import Foundation
import Testing

@testable import CompassHandlers
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassTestSupport

/// Every stored record, with every property set, read back as it was written, by each way it
/// is read: its one codec (`Codable`, through `JSONCoding`). A property added to a record and
/// forgotten by its codec, or left unset here, fails a test.
@Suite struct RecordRoundTripTests {
    static let at = Date(timeIntervalSince1970: 1_795_820_995)
    static let sealed = SealedSecret(keyId: "k1", nonce: "bm9uY2U", ciphertext: "Y2lwaGVy", tag: "dGFn")

    /// The paths of the properties that are nil (or an empty collection) anywhere in `value`.
    static func unset(_ value: Any, path: String = "") -> [String] {
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional {
            guard let wrapped = mirror.children.first?.value else { return [path] }
            return unset(wrapped, path: path)
        }
        if mirror.displayStyle == .collection || mirror.displayStyle == .dictionary {
            guard !mirror.children.isEmpty else { return [path + " (empty)"] }
            return mirror.children.enumerated().flatMap { unset($0.element.value, path: path + "[\($0.offset)]") }
        }
        guard mirror.displayStyle == .struct else { return [] }
        return mirror.children.flatMap { unset($0.value, path: path + "." + ($0.label ?? "?")) }
    }

    static var integration: Integration {
        var full = Integration(
            tenantId: "tenant_b", provider: "meta", status: .needsReauth, statusReason: "token_invalid", metaUserId: "10002",
            config: .init(
                adAccounts: [
                    AdAccount(id: "act_1", accountId: "1", name: "Shop", currency: "EUR", status: 1, business: .init(id: "b1", name: "Biz"))
                ],
                adAccountId: "act_1", pixelId: "2000101", testEventCode: "TEST123", testEventCodeExpiresAt: at,
                datasets: ["physical_store": "3000903"]),
            grantedScopes: ["ads_read"], missingScopes: ["business_management"], connectedAt: at, updatedAt: at,
            lastRefresh: RefreshOutcome(outcome: "renewed", at: at, detail: "ok"))
        full.tokenType = "system_user"
        full.clientBusinessId = "b1"
        full.pixelProblem = PixelProblem(reason: "pixel_unavailable", since: at)
        full.datasetProblems = ["3000903": PixelProblem(reason: "dataset_unavailable", since: at)]
        return full
    }

    static var credential: IntegrationCredential {
        var full = IntegrationCredential(
            tenantId: "tenant_b", token: sealed, expiresAt: at, dataAccessExpiresAt: at, scopes: ["ads_read"], metaUserId: "10002",
            updatedAt: at, checkedAt: at)
        full.tokenType = "system_user"
        full.dueAt = at
        return full
    }

    static var outboxEntry: OutboxEntry {
        let cipher = CredentialCipher(
            keys: try! CredentialKeys(current: Data(repeating: 7, count: 32).base64EncodedString(), previous: nil), random: SecureRandom())
        let event = NormalizedEvent(
            eventId: "e1", eventName: "Lead", eventTime: 1_795_820_000, actionSource: "website",
            payload: .object(["event_name": "Lead"]), matchKeys: ["em"], warnings: [])
        var entry = OutboxEntry(event, tenantId: "tenant_b", now: at, error: "transient", cipher: cipher)
        entry.attempts = 3
        entry.deadReason = "max_attempts"
        entry.internalEventId = "cmp_0123"
        entry.testEventCode = "TEST55"
        return entry
    }

    static var quality: MatchQuality {
        let share = EventQuality.Share(percentage: 40, goalPercentage: 75, description: "coverage")
        let event = EventQuality(
            eventName: "Purchase", compositeScore: 6.2, matchKeyCoverage: ["email": 99.5],
            diagnostics: [.init(name: "n", description: "d", solution: "s", percentage: 10, affectedEventCount: 1, totalEventCount: 10)],
            eventCoverage: share,
            dedupeKeys: [.init(key: "event_id", browserEventsWithKey: 90, serverEventsWithKey: 100, browserCoverage: 80)],
            dataFreshness: .init(uploadFrequency: "real_time", description: "live"), additionalConversionsReported: share)
        let offline = OfflineEventQuality(
            eventName: "Purchase", composite: .init(score: 6.6, recommendation: "r"), matchKey: .init(score: 5.6, recommendation: "m"),
            frequency: .init(score: 4.6, recommendation: "q"), freshness: .init(score: 2.2, recommendation: "f"), emailCoverage: 100,
            phoneCoverage: 90)
        return MatchQuality(
            pixelId: "2000101", fetchedAt: at, events: [event], offline: [offline],
            lastFailure: .init(at: at, message: "(#100) refused", retryAt: at))
    }

    static var stats: DeliveryStats {
        DeliveryStats(
            eventsSent: 3, eventsWithKey: ["em": 3], lastDeliveryAt: at, lastFailureAt: at, lastFailure: "transient",
            datasets: ["2000101": .init(eventsSent: 3, lastDeliveryAt: at, lastFailureAt: at, lastFailure: "transient")])
    }

    static var notice: CompassNotice {
        CompassNotice(
            type: "integration.quality_degraded", tenant: "tenant_b", reason: "dedupe_coverage_low", time: at, attempts: 2,
            dataset: "2000101")
    }

    @Test func everyRecordHereHasEveryPropertySet() {
        let records: [(String, Any)] = [
            ("Integration", Self.integration), ("IntegrationCredential", Self.credential), ("OutboxEntry", Self.outboxEntry),
            ("MatchQuality", Self.quality), ("DeliveryStats", Self.stats), ("CompassNotice", Self.notice),
            ("OAuthState", OAuthState(tenantId: "tenant_b", createdAt: Self.at, rerequest: true)),
        ]
        for (name, record) in records {
            #expect(Self.unset(record).isEmpty, "\(name) has properties this test leaves unset: \(Self.unset(record))")
        }
    }

    @Test func everyRecordReadsBackAsWritten() throws {
        func roundTrip<T: Codable & Equatable>(_ record: T) throws {
            #expect(try JSON.decode(T.self, from: JSON.encode(record)) == record, "\(T.self)")
        }
        try roundTrip(Self.integration)
        try roundTrip(Self.credential)
        try roundTrip(Self.outboxEntry)
        try roundTrip(Self.quality)
        try roundTrip(Self.stats)
        try roundTrip(Self.notice)
        try roundTrip(OAuthState(tenantId: "tenant_b", createdAt: Self.at, rerequest: true))
        // The OAuth state keeps its form of before (Unix seconds), so a state in flight stays valid.
        let state = try JSONParser.parse(JSON.encode(OAuthState(tenantId: "tenant_b", createdAt: Self.at, rerequest: true)))
        #expect(state == .object(["tenantId": "tenant_b", "createdAt": .int(1_795_820_995), "rerequest": .bool(true)]))
    }
}
