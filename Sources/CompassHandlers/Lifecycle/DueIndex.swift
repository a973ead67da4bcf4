import CompassPlatform
import CompassStorage
import Synchronization

/// When each connected integration's next piece of periodic work (a token check or renewal) is
/// due, ordered by time: `meta/due/<minute>/<tenant>`, the minute as zero-padded Unix minutes
/// so that byte order is time order. refresh-cron lists from the start and stops at the first
/// entry in the future: a run reads what is due and nothing else, however many tenants exist.
/// The outbox has an index of the same shape (`meta/outbox-due/`): when a tenant's queued
/// events are next to be tried.
///
/// The store has no transaction across keys, so an entry is only a hint and the credential
/// holds the truth: its `dueAt` names its one live entry. A change of schedule writes the new
/// entry first, then the credential (compare-and-swap), then deletes the old entry; a crash
/// between the steps leaves an extra entry, never a missing one, and an entry that is not the
/// credential's own is dropped when it comes due.
package struct DueIndex: Sendable {
    package let store: any KeyValueStore
    package let prefix: String

    /// Token checks and renewals.
    package static let prefix = "meta/due/"
    /// Tenants whose queued events are next to be tried.
    package static let outboxPrefix = "meta/outbox-due/"
    /// Tenants whose pixel's Event Match Quality is next to be fetched from Meta.
    package static let qualityPrefix = "meta/quality-due/"
    /// Daily work comes about this long after the last, each tenant moved by up to half an
    /// hour either way, so that tenants connected (or seeded) together spread over the day.
    package static let period: TimeInterval = 24 * 3600
    package static let jitter: TimeInterval = 1800
    /// Work that failed for a reason that may pass (Meta or the network down) is tried again
    /// this much later.
    package static let retryDelay: TimeInterval = 600

    package init(store: any KeyValueStore, prefix: String = DueIndex.prefix) {
        self.store = store
        self.prefix = prefix
    }

    package static func key(_ tenant: String, at instant: Date, prefix: String = DueIndex.prefix) -> String {
        let minute = max(0, instant.unixSeconds / 60)
        let digits = String(minute)
        return String(concatenating: prefix, String(repeating: "0", count: max(0, 10 - digits.count)), digits, "/", tenant)
    }

    /// The tenant and minute of an index key, nil for anything else under the prefix.
    package static func entry(of key: String, prefix: String = DueIndex.prefix) -> (tenant: String, minute: Int64)? {
        guard key.hasPrefix(prefix) else { return nil }
        let parts = key.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count == 10, let minute = Int64(parts[0]), Tenant.isValidId(parts[1]) else { return nil }
        return (String(parts[1]), minute)
    }

    /// The next daily instant after `now`: a period later, moved by a random part of the jitter.
    package static func nextDaily(after now: Date, random: any RandomSource) -> Date {
        now.addingTimeInterval(period + (randomFraction(random) * 2 - 1) * jitter)
    }

    /// A uniform value in [0, 1).
    package static func randomFraction(_ random: any RandomSource) -> Double {
        var value: UInt64 = 0
        for byte in random.bytes(7) { value = value << 8 | UInt64(byte) }
        return Double(value) / Double(UInt64(1) << 56)
    }

    /// When a credential's next work is due: its renewal once the token enters the renewal
    /// window, else its daily check.
    package static func next(
        for credential: IntegrationCredential, now: Date, renewalWindow: TimeInterval,
        random: any RandomSource
    ) -> Date {
        let daily = nextDaily(after: now, random: random)
        guard let expires = credential.expiresAt else { return daily }
        return min(daily, max(now, expires.addingTimeInterval(-renewalWindow)))
    }

    /// Entries due by `now` after the key `after`, oldest first: at most `limit`, and whether
    /// more are due.
    package func due(asOf now: Date, after: String? = nil, limit: Int) throws(StoreError) -> (
        entries: [(key: String, tenant: String)], more: Bool
    ) {
        let nowMinute = now.unixSeconds / 60
        var found: [(key: String, tenant: String)] = []
        var cursor = after
        repeat {
            let page = try store.list(prefix: prefix, after: cursor, limit: limit + 1 - found.count)
            for (key, _) in page.entries {
                guard let entry = Self.entry(of: key, prefix: prefix) else {
                    // Not an index key (written by hand?): it would block the listing forever.
                    _ = try? store.delete(key)
                    continue
                }
                guard entry.minute <= nowMinute else { return (found, false) }
                if found.count == limit { return (found, true) }
                found.append((key, entry.tenant))
            }
            cursor = page.cursor
        } while cursor != nil
        return (found, false)
    }

    /// How many entries are due by `now` (for a run's summary of what it left).
    package func countDue(asOf now: Date) throws(StoreError) -> Int {
        var total = 0
        var cursor: String? = nil
        let nowMinute = now.unixSeconds / 60
        repeat {
            let page = try store.list(prefix: prefix, after: cursor, limit: 500)
            for (key, _) in page.entries {
                guard let entry = Self.entry(of: key, prefix: prefix) else { continue }
                guard entry.minute <= nowMinute else { return total }
                total += 1
            }
            cursor = page.cursor
        } while cursor != nil
        return total
    }

    /// Writes the entry for `tenant` at `instant` (before the credential that names it).
    package func add(_ tenant: String, at instant: Date) throws(StoreError) {
        try store.put(Self.key(tenant, at: instant, prefix: prefix), [], ttl: nil)
    }

    /// Why `takeEach` stopped taking entries before the last.
    package enum Stop: Sendable { case none, deadline, refused }

    /// Runs `work` for each entry, `concurrency` at once on threads of their own (the work
    /// waits on Meta), taking no new entry once `deadline` has passed or `refuse()` says so.
    package static func takeEach(
        _ entries: [(key: String, tenant: String)], concurrency: Int, clock: any Clock, deadline: Date?,
        refuse: @escaping @Sendable () -> Bool = { false },
        _ work: @escaping @Sendable ((key: String, tenant: String)) -> Void
    ) -> Stop {
        let taking = Mutex((next: 0, stop: Stop.none))
        Workers.run(min(concurrency, entries.count)) { _ in
            while true {
                let position = taking.withLock { state -> Int? in
                    guard state.next < entries.count, case .none = state.stop else { return nil }
                    if let deadline, clock.now >= deadline {
                        state.stop = .deadline
                        return nil
                    }
                    if refuse() {
                        state.stop = .refused
                        return nil
                    }
                    defer { state.next += 1 }
                    return state.next
                }
                guard let position else { return }
                work(entries[position])
            }
        }
        return taking.withLock { $0.stop }
    }

    /// Deletes every entry of `tenant`, reading the whole index: for the outbox index (one
    /// entry per tenant with queued events) when a tenant's data is deleted.
    package func removeAll(of tenant: String) throws(StoreError) {
        var cursor: String? = nil
        repeat {
            let page = try store.list(prefix: prefix, after: cursor, limit: 500)
            for (key, _) in page.entries where Self.entry(of: key, prefix: prefix)?.tenant == tenant {
                try store.delete(key)
            }
            cursor = page.cursor
        } while cursor != nil
    }

    /// Deletes the entry at `instant` unless it is also `keeping` (the same minute).
    package func remove(_ tenant: String, at instant: Date?, keeping: Date? = nil) {
        guard let instant else { return }
        let key = Self.key(tenant, at: instant, prefix: prefix)
        if let keeping, Self.key(tenant, at: keeping, prefix: prefix) == key { return }
        _ = try? store.delete(key)
    }
}
