import CompassMeta
import CompassPlatform
import CompassStorage

/// Events Meta could not take yet, one record per (event_id, event_name): stored once however
/// often they come. The event itself, as Meta takes it (hashed match keys, but also the IP
/// address, user agent, page URL, custom data and the event id), is sealed with the credentials
/// key (AES-256-GCM), bound to its tenant and record key; in the clear is only what scheduling
/// needs: the event's name, time and action source, the test event code it was accepted with,
/// which match keys it carries (names only), attempts, times and the last error.
package struct OutboxEntry: Codable, Sendable, Equatable {
    package var tenantId: String
    package var eventName: String
    package var eventTime: Int64
    package var actionSource: String
    /// Meta's payload for the event, sealed (`sealContext`).
    package var sealedEvent: SealedSecret
    /// Which match keys the event carries (names only), for the coverage figures.
    package var matchKeys: [String]
    package var queuedAt: Date
    package var attempts: Int
    package var nextAttemptAt: Date
    package var lastError: String?
    /// Set when dead-lettered.
    package var deadReason: String?
    /// The connector's own idempotency key of an event the caller gave no `eventId`: it is not
    /// in the payload, so that Meta deduplicates that event with the browser pixel's copy by
    /// `event_name` with `fbp` or `external_id` (docs/api.md, "Browser and server copies").
    package var internalEventId: String?
    /// The test event code the event was accepted with (its request's, else the tenant's then),
    /// `""` for none: a test event stays one, and a real one stays real. Absent on an entry
    /// queued before events kept their code: that one goes with the tenant's code in force.
    package var testEventCode: String?

    /// The code to send the event with, `tenantCode` being the tenant's code in force now.
    package func testEventCode(tenantCode: String?) -> String? {
        guard let kept = testEventCode else { return tenantCode }
        return kept.isEmpty ? nil : kept
    }

    /// Associated data of the sealed event: a record copied under another tenant or event does
    /// not open. Dead-lettering and replay keep the tenant and the event key, so the seal too.
    package static func sealContext(tenant: String, dedupKey: String) -> String { "compass/meta/outbox/\(tenant)/\(dedupKey)" }

    /// Past Meta's window (7 days, 62 for physical stores), with a margin for the send itself.
    package func isOutsideMetaWindow(now: Date) -> Bool {
        let days: Int64 = actionSource == "physical_store" ? 62 : 7
        return eventTime < now.unixSeconds - days * 86_400 + 300
    }

    package init(
        _ event: NormalizedEvent, tenantId: String, now: Date, error: String?, cipher: CredentialCipher, testEventCode: String? = nil
    ) {
        self.tenantId = tenantId
        eventName = event.eventName
        eventTime = event.eventTime
        actionSource = event.actionSource
        sealedEvent = cipher.seal(
            String(decoding: event.payloadJSON, as: UTF8.self),
            context: Self.sealContext(tenant: tenantId, dedupKey: event.dedupKey))
        matchKeys = Array(event.matchKeys)
        queuedAt = now
        attempts = 0
        nextAttemptAt = now
        lastError = error
        internalEventId = event.payloadCarriesEventId ? nil : event.eventId
        self.testEventCode = testEventCode ?? ""
    }

    /// The event, opened. Fails when the key that sealed it is gone, or when the record was
    /// altered or moved under another tenant or event.
    package func event(tenant: String, dedupKey: String, cipher: CredentialCipher) throws(CredentialCipher.Failure) -> NormalizedEvent {
        let text = try cipher.open(sealedEvent, context: Self.sealContext(tenant: tenant, dedupKey: dedupKey))
        let bytes = Array(text.utf8)
        guard let payload = try? JSONParser.parse(bytes), let eventId = payload["event_id"]?.string ?? internalEventId else {
            throw .unreadable
        }
        let event = NormalizedEvent(
            eventId: eventId, eventName: eventName, eventTime: eventTime, actionSource: actionSource,
            payloadJSON: bytes, matchKeys: MatchKeys(matchKeys), warnings: [])
        guard event.dedupKey == dedupKey else { throw .unreadable }
        return event
    }

    /// Sealed again under the current key, when an older one sealed it.
    package func resealed(tenant: String, dedupKey: String, cipher: CredentialCipher) throws(CredentialCipher.Failure) -> OutboxEntry? {
        guard cipher.needsRotation(sealedEvent) else { return nil }
        let context = Self.sealContext(tenant: tenant, dedupKey: dedupKey)
        var copy = self
        copy.sealedEvent = cipher.seal(try cipher.open(sealedEvent, context: context), context: context)
        return copy
    }
}

/// Per tenant: what was delivered and how well events can be matched; the same counts and
/// times per dataset (`datasets`, absent from figures kept before datasets had their own).
package struct DeliveryStats: Codable, Sendable, Equatable {
    package var eventsSent: Int = 0
    package var eventsWithKey: [String: Int] = [:]
    package var lastDeliveryAt: Date?
    package var lastFailureAt: Date?
    package var lastFailure: String?
    package var datasets: [String: DatasetFigures]?

    package struct DatasetFigures: Codable, Sendable, Equatable {
        package var eventsSent: Int = 0
        package var lastDeliveryAt: Date?
        package var lastFailureAt: Date?
        package var lastFailure: String?
    }

    /// The figures of `dataset`: its own; before datasets had their own, the tenant's, which
    /// are the default pixel's (`pixelId`).
    package func figures(of dataset: String, pixelId: String?) -> DatasetFigures {
        if let own = datasets?[dataset] { return own }
        guard datasets == nil, dataset == pixelId else { return DatasetFigures() }
        return DatasetFigures(
            eventsSent: eventsSent, lastDeliveryAt: lastDeliveryAt, lastFailureAt: lastFailureAt, lastFailure: lastFailure)
    }

    /// One delivery's outcome, for the tenant and for `dataset` (the default pixel's figures
    /// from before datasets become its own at the first).
    package mutating func record(sent: Int, failure: String?, dataset: String, pixelId: String?, at now: Date) {
        var all = datasets ?? [:]
        if datasets == nil, let pixelId { all[pixelId] = figures(of: pixelId, pixelId: pixelId) }
        var figures = all[dataset] ?? DatasetFigures()
        if sent > 0 {
            eventsSent += sent
            lastDeliveryAt = now
            figures.eventsSent += sent
            figures.lastDeliveryAt = now
        }
        if let failure {
            lastFailureAt = now
            lastFailure = failure
            figures.lastFailureAt = now
            figures.lastFailure = failure
        }
        all[dataset] = figures
        datasets = all
    }
}

extension RecordKey {
    package static func outbox(_ tenant: String, _ dedupKey: String) -> String { "meta/outbox/\(tenant)/\(dedupKey)" }
    package static func outboxPrefix(_ tenant: String) -> String { "meta/outbox/\(tenant)/" }
    package static let outboxRoot = "meta/outbox/"
    package static func dead(_ tenant: String, _ dedupKey: String) -> String { "meta/dead/\(tenant)/\(dedupKey)" }
    package static func deadPrefix(_ tenant: String) -> String { "meta/dead/\(tenant)/" }
    package static let deadRoot = "meta/dead/"
    /// Present for 48 hours after Meta took the event: Meta's own deduplication window.
    package static func sent(_ tenant: String, _ dedupKey: String) -> String { "meta/sent/\(tenant)/\(dedupKey)" }
    package static func sentPrefix(_ tenant: String) -> String { "meta/sent/\(tenant)/" }
    package static func deliveryStats(_ tenant: String) -> String { "meta/delivery-stats/\(tenant)" }
    /// Held while a request counts and adds to a tenant's outbox (queueing, replay).
    package static func outboxLock(_ tenant: String) -> String { "meta/lease/outbox/\(tenant)" }
    /// Held by the one process draining a tenant's outbox.
    package static func drainLease(_ tenant: String) -> String { "meta/lease/drain/\(tenant)" }
    /// Written when a purge of the tenant begins (disconnect, data deletion) and kept through
    /// Meta's longest window: no outbox entry, dead letter, sent marker or delivery figure of the
    /// tenant is written while it stands. A new connection (the callback) removes it. Named by
    /// a digest of the tenant id: nothing of the tenant is readable in it.
    package static func purging(_ tenant: String) -> String {
        "meta/purging/" + Hex.encode(Crypto.sha256("purging\u{0}" + tenant).prefix(16))
    }
}

extension RecordStore {
    package static let sentLifetimeSeconds = 48 * 3600

    package func count(prefix: String) throws(StoreError) -> Int { try store.count(prefix: prefix) }

    /// Applies `change` to the tenant's delivery figures with compare-and-swap (a few tries).
    package func updateStats(_ tenant: String, _ change: (inout DeliveryStats) -> Void) {
        let key = RecordKey.deliveryStats(tenant)
        for _ in 0..<5 {
            do {
                if let (stats, version) = try loadUnlessCorrupt(DeliveryStats.self, at: key) {
                    var updated = stats
                    change(&updated)
                    try replace(updated, at: key, version: version)
                } else {
                    var fresh = DeliveryStats()
                    change(&fresh)
                    try create(fresh, at: key)
                }
                return
            } catch {
                continue
            }
        }
    }
}
