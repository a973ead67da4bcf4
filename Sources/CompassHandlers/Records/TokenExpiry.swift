import CompassPlatform
import CompassStorage

/// When each tenant's Meta token runs out, in an index by the hour it runs out in
/// (`meta/token-expiry/<minute>/<tenant>`, the minute that hour starts at), kept wherever a
/// credential is written or deleted, so that the tokens running out within a week are counted by
/// reading only those entries. The credential says which of a tenant's entries stands (the hour
/// of its `expiresAt`): the entry for a new token is written before its credential and the
/// replaced one's removed after, so a writer that dies between leaves at most an extra entry,
/// which the count passes over. An hour, not a minute: 60 days of tokens are some 1,440
/// folders, which the file store lists whole, not 86,400. A system user's token, which does not
/// run out, has none.
///
/// Stores written before also kept a pointer per tenant naming its entry
/// (`meta/token-expiry-of/<tenant>`), a seventh record of every tenant saying what the credential
/// says; nothing reads it now, and it is removed when the tenant's token moves to another hour
/// (every renewal) or goes.
package struct TokenExpiry: Sendable {
    package let store: any KeyValueStore
    package static let prefix = "meta/token-expiry/"
    /// Where stores written before kept a tenant's pointer to its entry.
    package static func earlierPointer(_ tenant: String) -> String { "meta/token-expiry-of/\(tenant)" }
    /// What "soon" means for the gauge.
    package static let soon: TimeInterval = 7 * 86_400

    /// The minute at which the hour `expiresAt` falls in starts: the entry's place.
    package static func bucket(_ expiresAt: Date) -> Date { Date(unixSeconds: expiresAt.unixSeconds / 3600 * 3600) }

    package init(store: any KeyValueStore) {
        self.store = store
    }

    private var index: DueIndex { DueIndex(store: store, prefix: Self.prefix) }

    /// Before a credential whose token runs out at `expiresAt` (nil: never) is written in place
    /// of one whose token ran out at `replacing`: the new token's entry, unless the same hour's.
    package func add(_ tenant: String, expiresAt: Date?, replacing: Date?) throws(StoreError) {
        guard let expiresAt, replacing.map(Self.bucket) != Self.bucket(expiresAt) else { return }
        try index.add(tenant, at: Self.bucket(expiresAt))
    }

    /// After that credential is written, or deleted (`keeping` nil): the entry of the token it
    /// replaced, unless the same hour's, and the pointer a store written before kept.
    package func remove(_ tenant: String, expiresAt: Date?, keeping: Date?) {
        let moved = expiresAt.map { keeping.map(Self.bucket) != Self.bucket($0) } ?? (keeping == nil)
        guard moved else { return }
        if let expiresAt { index.remove(tenant, at: Self.bucket(expiresAt)) }
        _ = try? store.delete(Self.earlierPointer(tenant))
    }

    /// Many credentials at once (the one-time walk over credentials written before the index):
    /// each token's entry, in one batch of writes (an entry already there is written again).
    package func addAll(_ tokens: [(tenant: String, expiresAt: Date?)]) throws(StoreError) {
        let entries: [BatchWrite] = tokens.compactMap { tenant, expiresAt in
            expiresAt.map { .put(DueIndex.key(tenant, at: Self.bucket($0), prefix: Self.prefix), [], ttl: nil) }
        }
        guard !entries.isEmpty else { return }
        _ = try store.write(entries)
    }

    /// Tokens that run out before `now + soon` (those past it included: not renewed in time), to
    /// the hour: each entry counted when its tenant's credential runs out in that hour.
    package func countSoon(now: Date) throws(StoreError) -> Int {
        /// The one field read of a credential.
        struct Expiry: Decodable { var expiresAt: Date? }
        let cutoff = now.addingTimeInterval(Self.soon).unixSeconds / 60
        var count = 0
        var cursor: String? = nil
        repeat {
            let page = try store.list(prefix: Self.prefix, after: cursor, limit: 200)
            for (key, _) in page.entries {
                guard let entry = DueIndex.entry(of: key, prefix: Self.prefix) else { continue }
                if entry.minute >= cutoff { return count }
                guard let stored = try store.get(RecordKey.credential(entry.tenant)),
                    let expiresAt = (try? JSON.decode(Expiry.self, from: stored.value))?.expiresAt
                else { continue }
                if Self.bucket(expiresAt).unixSeconds / 60 == entry.minute { count += 1 }
            }
            cursor = page.cursor
        } while cursor != nil
        return count
    }
}
