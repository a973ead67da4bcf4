/// Events Meta could not take yet, one record per (event_id, event_name): stored once however
/// often they come. Only normalized, hashed payloads are stored: never raw PII.
struct OutboxEntry: Codable, Sendable, Equatable {
    var tenantId: String
    var eventId: String
    var eventName: String
    var eventTime: Int64
    var actionSource: String
    var payload: JSONValue
    /// Which match keys the event carries (names only), for the coverage figures.
    var matchKeys: [String]
    var queuedAt: Date
    var attempts: Int
    var nextAttemptAt: Date
    var lastError: String?
    /// Set when dead-lettered.
    var deadReason: String?

    /// Past Meta's window (7 days, 62 for physical stores), with a margin for the send itself.
    func isOutsideMetaWindow(now: Date) -> Bool {
        let days: Int64 = actionSource == "physical_store" ? 62 : 7
        return eventTime < now.unixSeconds - days * 86_400 + 300
    }

    init(_ event: NormalizedEvent, tenantId: String, now: Date, error: String?) {
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

    var event: NormalizedEvent {
        NormalizedEvent(eventId: eventId, eventName: eventName, eventTime: eventTime, actionSource: actionSource,
                        payload: payload, matchKeys: Set(matchKeys), warnings: [])
    }
}

/// Per tenant: what was delivered and how well events can be matched.
struct DeliveryStats: Codable, Sendable, Equatable {
    var eventsSent: Int = 0
    var eventsWithKey: [String: Int] = [:]
    var lastDeliveryAt: Date?
    var lastFailureAt: Date?
    var lastFailure: String?
}

extension RecordKey {
    static func outbox(_ tenant: String, _ dedupKey: String) -> String { "meta/outbox/\(tenant)/\(dedupKey)" }
    static func outboxPrefix(_ tenant: String) -> String { "meta/outbox/\(tenant)/" }
    static let outboxRoot = "meta/outbox/"
    static func dead(_ tenant: String, _ dedupKey: String) -> String { "meta/dead/\(tenant)/\(dedupKey)" }
    static func deadPrefix(_ tenant: String) -> String { "meta/dead/\(tenant)/" }
    /// Present for 48 hours after Meta took the event: Meta's own deduplication window.
    static func sent(_ tenant: String, _ dedupKey: String) -> String { "meta/sent/\(tenant)/\(dedupKey)" }
    static func deliveryStats(_ tenant: String) -> String { "meta/delivery-stats/\(tenant)" }
    /// Held by the one process draining a tenant's outbox.
    static func drainLease(_ tenant: String) -> String { "meta/lease/drain/\(tenant)" }
}

extension RecordStore {
    static let sentLifetimeSeconds = 48 * 3600

    func count(prefix: String) throws(StoreError) -> Int { try store.count(prefix: prefix) }

    /// Applies `change` to the tenant's delivery figures with compare-and-swap (a few tries).
    func updateStats(_ tenant: String, _ change: (inout DeliveryStats) -> Void) {
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
