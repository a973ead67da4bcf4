import CompassMeta
import CompassPlatform
import CompassStorage

/// Events Meta could not take yet, one record per (event_id, event_name): stored once however
/// often they come. Only normalized, hashed payloads are stored: never raw PII.
package struct OutboxEntry: Codable, Sendable, Equatable {
    package var tenantId: String
    package var eventId: String
    package var eventName: String
    package var eventTime: Int64
    package var actionSource: String
    package var payload: JSONValue
    /// Which match keys the event carries (names only), for the coverage figures.
    package var matchKeys: [String]
    package var queuedAt: Date
    package var attempts: Int
    package var nextAttemptAt: Date
    package var lastError: String?
    /// Set when dead-lettered.
    package var deadReason: String?

    /// Past Meta's window (7 days, 62 for physical stores), with a margin for the send itself.
    package func isOutsideMetaWindow(now: Date) -> Bool {
        let days: Int64 = actionSource == "physical_store" ? 62 : 7
        return eventTime < now.unixSeconds - days * 86_400 + 300
    }

    package init(_ event: NormalizedEvent, tenantId: String, now: Date, error: String?) {
        self.tenantId = tenantId
        eventId = event.eventId
        eventName = event.eventName
        eventTime = event.eventTime
        actionSource = event.actionSource
        payload = event.payload
        matchKeys = event.matchKeys.sorted()
        queuedAt = now
        attempts = 0
        nextAttemptAt = now
        lastError = error
    }

    package var event: NormalizedEvent {
        NormalizedEvent(eventId: eventId, eventName: eventName, eventTime: eventTime, actionSource: actionSource,
                        payload: payload, matchKeys: Set(matchKeys), warnings: [])
    }
}

/// Per tenant: what was delivered and how well events can be matched.
package struct DeliveryStats: Codable, Sendable, Equatable {
    package var eventsSent: Int = 0
    package var eventsWithKey: [String: Int] = [:]
    package var lastDeliveryAt: Date?
    package var lastFailureAt: Date?
    package var lastFailure: String?
}

extension RecordKey {
    package static func outbox(_ tenant: String, _ dedupKey: String) -> String { "meta/outbox/\(tenant)/\(dedupKey)" }
    package static func outboxPrefix(_ tenant: String) -> String { "meta/outbox/\(tenant)/" }
    package static let outboxRoot = "meta/outbox/"
    package static func dead(_ tenant: String, _ dedupKey: String) -> String { "meta/dead/\(tenant)/\(dedupKey)" }
    package static func deadPrefix(_ tenant: String) -> String { "meta/dead/\(tenant)/" }
    /// Present for 48 hours after Meta took the event: Meta's own deduplication window.
    package static func sent(_ tenant: String, _ dedupKey: String) -> String { "meta/sent/\(tenant)/\(dedupKey)" }
    package static func sentPrefix(_ tenant: String) -> String { "meta/sent/\(tenant)/" }
    package static func deliveryStats(_ tenant: String) -> String { "meta/delivery-stats/\(tenant)" }
    /// Held while a request counts and adds to a tenant's outbox (queueing, replay).
    package static func outboxLock(_ tenant: String) -> String { "meta/lease/outbox/\(tenant)" }
    /// Held by the one process draining a tenant's outbox.
    package static func drainLease(_ tenant: String) -> String { "meta/lease/drain/\(tenant)" }
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
