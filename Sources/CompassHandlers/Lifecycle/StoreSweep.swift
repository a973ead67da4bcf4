import CompassPlatform
import CompassStorage

/// Deletes records whose time to live has run out (OAuth states never completed, sent markers
/// past Meta's 48 hours, leases of processes that died, ...). Reads ignore them already; the
/// sweep frees the space they hold, so the store grows with live data only. refresh-cron sweeps
/// a bounded share each run and remembers where it stopped; `compass-dev sweep` goes to the end.
package struct StoreSweep {
    package let store: any KeyValueStore
    /// Keys looked at per call to the store.
    package static let batch = 1000
    /// Keys one cron run looks at: a few hundred milliseconds of header reads on the file store.
    package static let perRun = 20_000

    package init(store: any KeyValueStore) {
        self.store = store
    }

    package struct Summary: Codable, Sendable, Equatable {
        package var visited = 0
        package var deleted = 0
        /// True when this run reached the end of the store (the next one starts again).
        package var wrapped = false
    }

    /// One cron run's share: from where the last run stopped, at most `budget` keys.
    package func runShare(asOf: Date, budget: Int = StoreSweep.perRun) throws(StoreError) -> Summary {
        var summary = Summary()
        let records = RecordStore(store: store)
        var cursor = try records.cursor(at: RecordKey.sweepCursor)
        while summary.visited < budget {
            let page = try store.sweepExpired(after: cursor, limit: min(Self.batch, budget - summary.visited), asOf: asOf)
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
            let page = try store.sweepExpired(after: cursor, limit: Self.batch, asOf: asOf)
            summary.visited += page.visited
            summary.deleted += page.deleted
            cursor = page.cursor
        } while cursor != nil
        return summary
    }
}
