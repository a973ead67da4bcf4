import CompassPlatform
import CompassStorage

/// Deletes records whose time to live has run out (OAuth states never completed, sent markers
/// past Meta's 48 hours, leases of processes that died, ...). Reads ignore them already; the
/// sweep frees the space they hold, so the store grows with live data only. refresh-cron sweeps
/// a bounded share per run, run after run until it has been through the whole store, then
/// rests for `interval` (six hours); `compass-dev sweep` goes to the end at once.
package struct StoreSweep {
    package let store: any KeyValueStore
    /// Keys one cron run looks at: a second or so of header reads on the file store.
    package static let perRun = 100_000
    /// After a sweep reached the end of the store, the next one starts this much later: expired
    /// records are invisible already, the sweep only frees their space.
    package static let interval: TimeInterval = 6 * 3600

    package init(store: any KeyValueStore) {
        self.store = store
    }

    package struct Summary: Codable, Sendable, Equatable {
        package var visited = 0
        package var deleted = 0
        /// True when this run reached the end of the store (the next one starts again).
        package var wrapped = false
    }

    /// A cron run's share if a sweep is due (one is going on, or the last ended `interval`
    /// ago); nil when none is.
    package func runShareIfDue(asOf now: Date, budget: Int = StoreSweep.perRun) throws(StoreError) -> Summary? {
        if let next = try store.get(RecordKey.sweepNext), let at = Int64(String(decoding: next.value, as: UTF8.self)),
            at > now.unixSeconds
        {
            return nil
        }
        let summary = try runShare(asOf: now, budget: budget)
        let next = summary.wrapped ? now.addingTimeInterval(Self.interval) : now
        try store.put(RecordKey.sweepNext, Array(String(next.unixSeconds).utf8))
        return summary
    }

    /// One cron run's share: from where the last run stopped, at most `budget` keys, in one
    /// call to the store (the file store then reads each folder once).
    package func runShare(asOf: Date, budget: Int = StoreSweep.perRun) throws(StoreError) -> Summary {
        var summary = Summary()
        let records = RecordStore(store: store)
        var cursor = try records.cursor(at: RecordKey.sweepCursor)
        while summary.visited < budget {
            let page = try store.sweepExpired(after: cursor, limit: budget - summary.visited, asOf: asOf)
            summary.visited += page.visited
            summary.deleted += page.deleted
            cursor = page.cursor
            if cursor == nil {
                summary.wrapped = true
                break
            }
        }
        try records.setCursor(cursor, at: RecordKey.sweepCursor)
        return summary
    }

    /// The whole store, as of `asOf` (an operator's sweep; a later instant sweeps what will
    /// have expired by then).
    package func runToEnd(asOf: Date) throws(StoreError) -> Summary {
        var summary = Summary(wrapped: true)
        var cursor: String? = nil
        repeat {
            let page = try store.sweepExpired(after: cursor, limit: Self.perRun, asOf: asOf)
            summary.visited += page.visited
            summary.deleted += page.deleted
            cursor = page.cursor
        } while cursor != nil
        return summary
    }
}
