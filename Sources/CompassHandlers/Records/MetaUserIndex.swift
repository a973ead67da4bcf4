import CompassStorage

/// Which tenants each Meta user connected, for Meta's callbacks (a deauthorization or a data
/// deletion names a user, not a tenant) and for a disconnect (Meta's revoke is per user):
/// `meta/meta-users/<shard>/<user>-<tenant>`, the shard being the user id's last three
/// digits. A Meta user id is digits (the Graph client and the callbacks take no other), so
/// `<user>-` begins one user's entries and no other user's. A thousand shared folders hold
/// them all: a folder per user, as stores written before this index had
/// (`meta/meta-user/<user>/<tenant>`), cost the file store a folder, an inode and a block, for
/// nearly every tenant. Entries of that layout are still read and deleted wherever a user's
/// tenants are looked up or a tenant's entry is removed, and replaced when the tenant connects
/// again; none is written.
package struct MetaUserIndex: Sendable {
    package let store: any KeyValueStore
    package static let prefix = "meta/meta-users/"
    /// Where stores written before this index keep it.
    package static let earlierPrefix = "meta/meta-user/"

    package init(store: any KeyValueStore) {
        self.store = store
    }

    /// The start of every entry of `user`'s.
    package static func prefix(of user: String) -> String { String(concatenating: prefix, String(user.suffix(3)), "/", user, "-") }
    package static func key(_ user: String, _ tenant: String) -> String { String(concatenating: prefix(of: user), tenant) }
    static func earlierPrefix(of user: String) -> String { earlierPrefix + user + "/" }
    static func earlierKey(_ user: String, _ tenant: String) -> String { earlierPrefix(of: user) + tenant }

    /// `tenant` is connected through `user` (its entry of the earlier layout, if any, goes).
    package func add(_ user: String, _ tenant: String) throws(StoreError) {
        try store.put(Self.key(user, tenant), Array("{}".utf8), ttl: nil)
        try store.delete(Self.earlierKey(user, tenant), ifVersion: nil)
    }

    /// `tenant` is no longer connected through `user`.
    package func remove(_ user: String, _ tenant: String) throws(StoreError) {
        try store.delete(Self.key(user, tenant), ifVersion: nil)
        try store.delete(Self.earlierKey(user, tenant), ifVersion: nil)
    }

    /// Every tenant connected through `user`, in either layout, each once, in byte order.
    package func tenants(of user: String) throws(StoreError) -> [String] {
        var tenants: Set<String> = []
        for prefix in [Self.prefix(of: user), Self.earlierPrefix(of: user)] {
            var cursor: String? = nil
            repeat {
                let page = try store.list(prefix: prefix, after: cursor, limit: 500)
                for (key, _) in page.entries { tenants.insert(String(key.dropFirst(prefix.count))) }
                cursor = page.cursor
            } while cursor != nil
        }
        return tenants.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Whether a tenant other than `tenant` is connected through `user`: two entries of each
    /// layout read at most.
    package func hasTenant(of user: String, besides tenant: String) throws(StoreError) -> Bool {
        for prefix in [Self.prefix(of: user), Self.earlierPrefix(of: user)] {
            let page = try store.list(prefix: prefix, after: nil, limit: 2)
            if page.entries.contains(where: { $0.key.dropFirst(prefix.count) != tenant }) { return true }
        }
        return false
    }
}
