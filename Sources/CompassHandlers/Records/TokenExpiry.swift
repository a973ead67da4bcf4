import CompassPlatform
import CompassStorage

/// When each tenant's Meta token runs out, in an index by the hour it runs out in
/// (`meta/token-expiry/<minute>/<tenant>`, the minute that hour starts at, with
/// `meta/token-expiry-of/<tenant>` naming it), kept wherever a credential is written or deleted,
/// so that the tokens running out within a week are counted by reading only those entries. An
/// hour, not a minute: 60 days of tokens are some 1,440 folders, which the file store lists
/// whole, not 86,400. A system user's token, which does not run out, has none.
package struct TokenExpiry: Sendable {
    package let store: any KeyValueStore
    package static let prefix = "meta/token-expiry/"
    package static func pointer(_ tenant: String) -> String { "meta/token-expiry-of/\(tenant)" }
    /// What "soon" means for the gauge.
    package static let soon: TimeInterval = 7 * 86_400

    /// The minute at which the hour `expiresAt` falls in starts: the entry's place.
    package static func bucket(_ expiresAt: Date) -> Date { Date(unixSeconds: expiresAt.unixSeconds / 3600 * 3600) }

    package init(store: any KeyValueStore) {
        self.store = store
    }

    /// The tenant's token runs out at `expiresAt` (nil: never, or no token).
    package func set(_ tenant: String, expiresAt: Date?) throws(StoreError) {
        let index = DueIndex(store: store, prefix: Self.prefix)
        let kept = try store.get(Self.pointer(tenant))
        let keptMinute = kept.flatMap { Int64(String(decoding: $0.value, as: UTF8.self)) }
        let bucket = expiresAt.map(Self.bucket)
        let minute = bucket.map { $0.unixSeconds / 60 }
        guard minute != keptMinute else { return }
        // The new entry first, then the pointer, then the old entry: a crash leaves at most an
        // extra entry, which the count passes over (its pointer names another minute).
        if let bucket, let minute {
            try index.add(tenant, at: bucket)
            try store.put(Self.pointer(tenant), Array(String(minute).utf8), ttl: nil)
        } else if let kept {
            _ = try store.delete(Self.pointer(tenant), ifVersion: kept.version)
        }
        if let keptMinute { index.remove(tenant, at: Date(unixSeconds: keptMinute * 60)) }
    }

    /// Many tenants at once (the one-time walk over credentials written before the index): those
    /// not indexed yet in one batch of writes, every entry before every pointer; the others one
    /// by one, as `set`.
    package func setAll(_ tokens: [(tenant: String, expiresAt: Date?)]) throws(StoreError) {
        var entries: [BatchWrite] = []
        var pointers: [BatchWrite] = []
        for (tenant, expiresAt) in tokens {
            guard try store.get(Self.pointer(tenant)) == nil else {
                try set(tenant, expiresAt: expiresAt)
                continue
            }
            guard let expiresAt else { continue }
            let bucket = Self.bucket(expiresAt)
            entries.append(.put(DueIndex.key(tenant, at: bucket, prefix: Self.prefix), [], ttl: nil))
            // Created, not put: a `set` since the read above (a renewal, a reconnect) stands.
            pointers.append(.create(Self.pointer(tenant), Array(String(bucket.unixSeconds / 60).utf8), ttl: nil))
        }
        guard !entries.isEmpty else { return }
        _ = try store.write(entries + pointers)
    }

    /// The tenant has no token any more.
    package func clear(_ tenant: String) {
        try? set(tenant, expiresAt: nil)
    }

    /// Tokens that run out before `now + soon` (those past it included: not renewed in time), to
    /// the hour.
    package func countSoon(now: Date) throws(StoreError) -> Int {
        let cutoff = now.addingTimeInterval(Self.soon).unixSeconds / 60
        var count = 0
        var cursor: String? = nil
        repeat {
            let page = try store.list(prefix: Self.prefix, after: cursor, limit: 200)
            for (key, _) in page.entries {
                guard let entry = DueIndex.entry(of: key, prefix: Self.prefix) else { continue }
                if entry.minute >= cutoff { return count }
                let pointer = try store.get(Self.pointer(entry.tenant))
                if pointer.map({ String(decoding: $0.value, as: UTF8.self) }) == String(entry.minute) { count += 1 }
            }
            cursor = page.cursor
        } while cursor != nil
        return count
    }
}
