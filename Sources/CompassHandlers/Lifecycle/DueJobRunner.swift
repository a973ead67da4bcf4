import CompassMeta
import CompassPlatform
import CompassStorage
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One kind of refresh-cron work found through a due index (`meta/<job>-due/<minute>/<tenant>`):
/// the token job, the outbox drain, the quality fetch, the end of test codes. The job knows its
/// index, how to give the tenants from before the index an entry once, and the work for one
/// entry; `DueJobRunner` owns the rest.
package protocol DueJob: Sendable {
    var index: DueIndex { get }
    /// How many entries are worked on at once (`META_CONCURRENCY`, or 1).
    var concurrency: Int { get }
    /// Meta's usage as the job's calls report it: the runner pauses before an entry as it asks,
    /// and takes no new entry once it says stop (`throttled`). Nil for a job that calls no one
    /// with pacing.
    var usage: GraphUsage? { get }
    /// A second entry of a tenant in one page is an extra (a writer that died between two
    /// writes): dropped instead of worked on.
    var oneEntryPerTenant: Bool { get }
    /// Gives every tenant from before the index an entry, once.
    func indexOnce() throws(StoreError)
    /// The work for one due entry (it moves or deletes the entry itself).
    func work(_ entry: (key: String, tenant: String)) throws(StoreError)
    /// An extra entry of a tenant already taken in the page.
    func dropExtra(_ entry: (key: String, tenant: String))
    /// Waits as Meta's usage asks before the next entry (a test records it instead).
    func pause(_ seconds: Double)
}

extension DueJob {
    package var usage: GraphUsage? { nil }
    package var oneEntryPerTenant: Bool { false }
    package func dropExtra(_ entry: (key: String, tenant: String)) { _ = try? index.store.delete(entry.key) }
    package func pause(_ seconds: Double) { usleep(UInt32(min(seconds, 60) * 1_000_000)) }
}

/// A job's running totals, added to from the workers.
package final class Tally<Totals: Sendable>: Sendable {
    private let state: Mutex<Totals>

    package init(_ initial: Totals) { state = Mutex(initial) }

    package func add(_ body: (inout Totals) -> Void) { state.withLock { body(&$0) } }

    package var value: Totals { state.withLock { $0 } }
}

/// How a run of one job ended.
package struct DueRun: Sendable, Equatable {
    /// Due entries the run did not reach: its time budget was spent or Meta asked it to stop.
    package var left = 0
    /// The run stopped taking entries because Meta's usage headers neared its limits.
    package var throttled = false
}

/// Runs a `DueJob` over what is due: the index walked once, the due entries in time order a
/// page at a time, `concurrency` at once, paced by Meta's usage, until the deadline.
package struct DueJobRunner {
    package static let pageSize = 64
    package let clock: any Clock

    package init(clock: any Clock) {
        self.clock = clock
    }

    package func run<J: DueJob>(_ job: J, until deadline: Date?) throws(StoreError) -> DueRun {
        try job.indexOnce()
        let failure = Mutex<StoreError?>(nil)
        var after: String? = nil
        while true {
            let (listed, more) = try job.index.due(asOf: clock.now, after: after, limit: Self.pageSize)
            guard !listed.isEmpty else { break }
            // Entries a lease kept this run from taking stay; the listing goes on past them.
            after = listed.last?.key
            let entries = job.oneEntryPerTenant ? firstOfEachTenant(listed, job) : listed
            let usage = job.usage
            // No new entry once the deadline passed, Meta's usage is near its limits, or an entry
            // failed on the store.
            let refuse: @Sendable () -> Bool = {
                let metaSaysStop = usage.map { $0.pauseSeconds() == nil } ?? false
                return metaSaysStop || failure.withLock { $0 != nil }
            }
            let stop = DueIndex.takeEach(entries, concurrency: job.concurrency, clock: clock, deadline: deadline, refuse: refuse) { entry in
                if let seconds = usage?.pauseSeconds(), seconds > 0 { job.pause(seconds) }
                do throws(StoreError) {
                    try job.work(entry)
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                }
            }
            if let error = failure.withLock({ $0 }) { throw error }
            if stop != .none {
                // Taken entries moved on or were dropped; what is still due waits for the next run.
                return DueRun(left: try job.index.countDue(asOf: clock.now), throttled: stop == .refused)
            }
            guard more else { break }
        }
        return DueRun()
    }

    /// The page with each tenant's first entry; its extras dropped.
    private func firstOfEachTenant<J: DueJob>(_ entries: [(key: String, tenant: String)], _ job: J) -> [(key: String, tenant: String)] {
        var seen: Set<String> = []
        var unique: [(key: String, tenant: String)] = []
        for entry in entries {
            if seen.insert(entry.tenant).inserted { unique.append(entry) } else { job.dropExtra(entry) }
        }
        return unique
    }
}
