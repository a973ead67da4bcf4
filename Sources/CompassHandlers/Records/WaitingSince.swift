import CompassPlatform
import CompassStorage

/// Since when each tenant's outbox has held events, for the age of the oldest queued event
/// without reading the events: an entry `meta/waiting-since/<minute>/<tenant>` written when a
/// tenant's outbox goes from empty to holding events, and `meta/waiting-since-of/<tenant>`
/// naming its minute, both deleted when the outbox is empty again (a drain that empties it,
/// a disconnect). The oldest queued event is the first entry whose tenant still has one.
package struct WaitingSince: Sendable {
    package let store: any KeyValueStore
    package static let prefix = "meta/waiting-since/"
    package static func pointer(_ tenant: String) -> String { "meta/waiting-since-of/\(tenant)" }

    package init(store: any KeyValueStore) {
        self.store = store
    }

    /// The tenant's outbox holds events from `instant` on, unless it is known to already.
    package func start(_ tenant: String, at instant: Date) throws(StoreError) {
        guard try store.get(Self.pointer(tenant)) == nil else { return }
        // The entry first: a pointer never names a missing entry.
        try DueIndex(store: store, prefix: Self.prefix).add(tenant, at: instant)
        do {
            try store.create(Self.pointer(tenant), Array(String(instant.unixSeconds / 60).utf8), ttl: nil)
        } catch .alreadyExists {
            // Another request started it meanwhile, at the same minute or before: one entry too many, dropped.
            if let kept = try store.get(Self.pointer(tenant)),
                String(decoding: kept.value, as: UTF8.self) != String(instant.unixSeconds / 60)
            {
                DueIndex(store: store, prefix: Self.prefix).remove(tenant, at: instant)
            }
        }
    }

    /// The tenant's outbox is empty.
    package func end(_ tenant: String) {
        guard let found = try? store.get(Self.pointer(tenant)), let minute = Int64(String(decoding: found.value, as: UTF8.self)) else {
            return
        }
        DueIndex(store: store, prefix: Self.prefix).remove(tenant, at: Date(unixSeconds: minute * 60))
        _ = try? store.delete(Self.pointer(tenant), ifVersion: found.version)
    }

    /// When the oldest queued event was queued (to the minute), or nil when no outbox holds one.
    /// An entry whose tenant's outbox is empty (a process died between emptying and deleting)
    /// is passed over.
    package func oldest() throws(StoreError) -> Date? {
        var cursor: String? = nil
        for _ in 0..<4 {
            let page = try store.list(prefix: Self.prefix, after: cursor, limit: 5)
            for (key, _) in page.entries {
                guard let entry = DueIndex.entry(of: key, prefix: Self.prefix) else { continue }
                if try !store.list(prefix: RecordKey.outboxPrefix(entry.tenant), after: nil, limit: 1).entries.isEmpty {
                    return Date(unixSeconds: entry.minute * 60)
                }
            }
            guard let next = page.cursor else { return nil }
            cursor = next
        }
        return nil
    }
}
