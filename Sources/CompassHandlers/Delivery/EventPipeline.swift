import CompassMeta
import CompassPlatform
import CompassStorage

#if canImport(Glibc)
    import Glibc
#endif

/// What send-event and the outbox drain share: the tenant's sending context, the outbox, the
/// 48-hour record of what Meta took, and the delivery figures.
package struct EventPipeline {
    package let dependencies: Dependencies
    package let tenant: String
    /// Where the usage headers of Meta's answers go, when a job paces its calls by them.
    package var usage: GraphUsage? = nil

    package static let maxAttempts = 20
    package static let leaseSeconds = 300

    package var records: RecordStore { dependencies.records }
    package var now: Date { dependencies.clock.now }

    /// Everything needed to send for the tenant now, or why it cannot.
    package enum Context {
        case ready(Sending)
        /// Connected but events must wait (needs_reauth); they are queued.
        case waiting(String)
    }

    /// What sending needs for any of the tenant's datasets: Meta's client, the token and the
    /// settings as read.
    package struct Sending {
        package var graph: GraphClient
        package var token: String
        package var integration: Integration
        package var partnerAgent: String

        package func delivery(to destination: Destination) -> EventDelivery {
            EventDelivery(
                graph: graph, pixelId: destination.dataset, token: token, testEventCode: destination.testEventCode,
                partnerAgent: partnerAgent)
        }
    }

    package func context(for integration: Integration) throws -> Context {
        guard integration.status == .connected else { return .waiting("integration is \(integration.status.rawValue)") }
        guard !integration.config.datasetsInUse.isEmpty else { return .waiting("no pixel chosen") }
        let credential: IntegrationCredential? = try records.load(IntegrationCredential.self, at: RecordKey.credential(tenant))?.0
        guard let credential else { return .waiting("no stored token") }
        let token: String
        do {
            token = try dependencies.openToken(credential, tenant: tenant)
        } catch let error as CredentialCipher.Failure {
            dependencies.logger.error("credential_unreadable", ["error": .string("\(error)")])
            return .waiting("stored token cannot be decrypted")
        }
        var graph = try dependencies.graph()
        graph.usage = usage
        return .ready(Sending(graph: graph, token: token, integration: integration, partnerAgent: dependencies.config.meta.partnerAgent))
    }

    /// Where a queued event goes now: its action source's dataset as the settings say today,
    /// with the code it was accepted with.
    package func destination(of entry: OutboxEntry, settings: Integration.Settings) -> Destination? {
        guard let dataset = settings.dataset(for: entry.actionSource) else { return nil }
        return Destination(dataset: dataset, testEventCode: entry.testEventCode(tenantCode: settings.testEventCode(at: now)))
    }

    // MARK: One state per event id: claimed, sent

    /// What `meta/sent/<tenant>/<event key>` holds. A copy of an event is sent only by the
    /// request (or drain) that claimed it; the others find it claimed or sent. A queued event
    /// holds no state: its outbox entry is all it needs, and the claim of the request or drain
    /// that queued it is released (one record less per queued event). A copy that comes while
    /// it waits claims and is sent; the drain then finds it sent and removes the queued one.
    package enum EventState: String {
        /// Taken by a request or a drain that is sending it now (a short TTL: a holder that died frees it).
        case claimed = "claim"
        /// Waiting in the outbox: written by builds before queued events held no state (for
        /// eight days), and read as they read it: a copy is a duplicate, the drain claims it.
        case queued
        /// Meta took it; kept for Meta's 48-hour deduplication window.
        case sent = "1"

        var lifetimeSeconds: Int {
            switch self {
            case .claimed: 120
            case .queued: 8 * 86_400
            case .sent: RecordStore.sentLifetimeSeconds
            }
        }

        /// The record's value.
        var stored: [UInt8] { Array(rawValue.utf8) }

        /// The state a record holds; nil for an unknown value.
        init?(stored: Versioned) { self.init(rawValue: String(decoding: stored.value, as: UTF8.self)) }
    }

    /// How long a copy waits for another copy's send to end before it queues itself instead.
    package static let claimWaitMilliseconds: Int64 = 5_000

    package enum Claim {
        /// This request sends it; the version releases or settles the claim.
        case claimed(UInt64)
        /// Another copy was delivered (or is queued, by an earlier build's state): this one is a duplicate.
        case duplicate
        /// Another copy is still being sent after the wait: this one goes to the outbox, where
        /// the drain sends it unless that copy was delivered meanwhile.
        case pending
    }

    /// Claims `event` for this request: of overlapping copies exactly one wins the claim.
    package func claim(_ event: NormalizedEvent) throws(StoreError) -> Claim {
        let key = RecordKey.sent(tenant, event.dedupKey)
        let deadline = monotonicMilliseconds() + Self.claimWaitMilliseconds
        while true {
            do {
                return .claimed(try dependencies.store.create(key, EventState.claimed.stored, ttl: EventState.claimed.lifetimeSeconds))
            } catch {
                guard error == .alreadyExists else { throw error }
            }
            guard let current = try dependencies.store.get(key) else {
                // Released or expired in between: claim again (within the wait).
                guard monotonicMilliseconds() < deadline else { return .pending }
                continue
            }
            guard EventState(stored: current) == .claimed else { return .duplicate }
            guard monotonicMilliseconds() < deadline else { return .pending }
            usleep(20_000)
        }
    }

    /// Makes the tenant's queued events due at the next cron run (after a reconnect or a new
    /// pixel, when events that were waiting can go); nothing when none are queued.
    package func outboxDueNow() {
        guard let queued = try? dependencies.store.list(prefix: RecordKey.outboxPrefix(tenant), after: nil, limit: 1),
            !queued.entries.isEmpty
        else { return }
        _ = try? DueIndex(store: dependencies.store, prefix: DueIndex.outboxPrefix).add(tenant, at: now)
    }

    /// Claims every event of a request in one batch of writes; an event another copy holds
    /// already goes through `claim` on its own (and its wait).
    package func claimAll(_ events: [NormalizedEvent]) throws(StoreError) -> [Claim] {
        let versions = try dependencies.store.write(
            events.map {
                .create(RecordKey.sent(tenant, $0.dedupKey), EventState.claimed.stored, ttl: EventState.claimed.lifetimeSeconds)
            })
        var claims: [Claim] = []
        claims.reserveCapacity(events.count)
        for (event, version) in zip(events, versions) {
            if let version { claims.append(.claimed(version)) } else { claims.append(try claim(event)) }
        }
        return claims
    }

    /// Records what became of claimed events (sent: one batch of writes) or releases the claims
    /// (nil: rejected, queued, or not sent; one batch of deletes).
    package func settle(_ events: [NormalizedEvent], as state: EventState?) {
        // Losing a state only risks a resend, which Meta deduplicates by event_id.
        guard let state else {
            guard !events.isEmpty else { return }
            _ = try? dependencies.store.write(events.map { .delete(RecordKey.sent(tenant, $0.dedupKey)) })
            return
        }
        // A send that was at Meta when the tenant's purge began writes nothing of it afterwards.
        guard !events.isEmpty, !isBeingPurged else { return }
        _ = try? dependencies.store.write(
            events.map { .put(RecordKey.sent(tenant, $0.dedupKey), state.stored, ttl: state.lifetimeSeconds) })
    }

    /// True while the tenant's purge marker stands (`RecordKey.purging`).
    package var isBeingPurged: Bool { (try? dependencies.store.get(RecordKey.purging(tenant))) != nil }

    // MARK: Outbox

    package enum QueueFailure: ResponseError {
        case full(limit: Int)
        /// Another request held the tenant's outbox for longer than a request waits.
        case busy
        case store(StoreError)
        /// No key to seal the queued events with.
        case misconfigured(ConfigError)
        /// The tenant's connection was removed (its purge began) while the events were sent.
        case disconnected

        package var apiError: APIError {
            switch self {
            case .disconnected:
                APIError(404, "not_connected", "This tenant's Meta connection was removed while the events were sent; nothing was stored.")
            case .full(let limit):
                // refresh-cron drains the outbox every minute.
                APIError(
                    503, "outbox_full", "Meta cannot take events now and this tenant's outbox holds its limit of \(limit); retry later.",
                    headers: APIError.retryAfter(60))
            case .busy:
                APIError(
                    503, "outbox_busy", "Another request is queueing this tenant's events; retry shortly.", headers: APIError.retryAfter(1))
            case .store(let error):
                error.apiError
            case .misconfigured(let error):
                error.apiError
            }
        }

        package var logEntry: LogEntry? {
            switch self {
            case .full(let limit): LogEntry(.error, "outbox_full", ["limit": .int(limit)])
            case .busy: LogEntry(.warn, "outbox_busy")
            case .disconnected: LogEntry(.warn, "outbox_tenant_purged")
            case .store(let error): error.logEntry
            case .misconfigured(let error): error.logEntry
            }
        }
    }

    /// How long a queueing request waits for another to finish with the tenant's outbox.
    package static let outboxLockWaitMilliseconds: Int64 = 5_000
    /// A holder that died frees the lock after this long.
    package static let outboxLockSeconds = 120

    /// Stores each event once, with the test code it was accepted with (nil: none); returns how
    /// many were stored (or already there). Past the
    /// tenant's outbox bound nothing is stored and the caller is told (a 503, never a drop).
    /// Counting and adding happen under the tenant's outbox lock, so concurrent requests
    /// (and replays) never take the outbox past its bound together.
    package func queue(
        _ events: [NormalizedEvent], error: String?, retryAfter: Int? = nil, testEventCode: String? = nil
    ) throws(QueueFailure) -> Int {
        let cipher: CredentialCipher
        do {
            cipher = try dependencies.cipher()
        } catch {
            throw .misconfigured(error)
        }
        return try withOutboxLock { () throws(QueueFailure) in
            guard !isBeingPurged else { throw .disconnected }
            let limit = dependencies.config.routes.outboxMaxEvents
            let waiting: Int
            do throws(StoreError) {
                waiting = try dependencies.store.count(prefix: RecordKey.outboxPrefix(tenant))
            } catch {
                throw .store(error)
            }
            guard waiting + events.count <= limit else { throw .full(limit: limit) }
            do throws(StoreError) {
                // The outbox index first: a stored event is never without an entry to drain it.
                try DueIndex(store: dependencies.store, prefix: DueIndex.outboxPrefix)
                    .add(tenant, at: now.addingTimeInterval(TimeInterval(retryAfter ?? 0)))
                if waiting == 0 { try WaitingSince(store: dependencies.store).start(tenant, at: now) }
                return try store(events, error: error, retryAfter: retryAfter, testEventCode: testEventCode, cipher: cipher)
            } catch {
                throw .store(error)
            }
        }
    }

    /// Runs `body` holding the tenant's outbox lock (a create-if-absent record with a TTL, so a
    /// holder that died frees it), waiting briefly for another holder.
    package func withOutboxLock<T>(_ body: () throws(QueueFailure) -> T) throws(QueueFailure) -> T {
        let key = RecordKey.outboxLock(tenant)
        let deadline = monotonicMilliseconds() + Self.outboxLockWaitMilliseconds
        var pause: UInt32 = 2_000
        var lock: UInt64? = nil
        while lock == nil {
            do {
                lock = try dependencies.store.create(key, [], ttl: Self.outboxLockSeconds)
            } catch {
                guard error == .alreadyExists else { throw .store(error) }
                guard monotonicMilliseconds() < deadline else { throw .busy }
                usleep(pause)
                pause = min(pause * 2, 50_000)
            }
        }
        defer { _ = try? dependencies.store.delete(key, ifVersion: lock) }
        return try body()
    }

    /// One batch of create-if-absent writes: an event already waiting stays stored once,
    /// however often it comes.
    private func store(
        _ events: [NormalizedEvent], error: String?, retryAfter: Int?, testEventCode: String?, cipher: CredentialCipher
    ) throws(StoreError) -> Int {
        let writes: [BatchWrite] = events.map { event in
            var entry = OutboxEntry(event, tenantId: tenant, now: now, error: error, cipher: cipher, testEventCode: testEventCode)
            if let retryAfter { entry.nextAttemptAt = now.addingTimeInterval(TimeInterval(retryAfter)) }
            return .create(RecordKey.outbox(tenant, event.dedupKey), JSON.encode(entry), ttl: nil)
        }
        let versions = try dependencies.store.write(writes)
        let stored = versions.count { $0 != nil }
        dependencies.metrics.add(MetricCatalog.eventsQueued, [:], stored)
        dependencies.metrics.add(MetricCatalog.eventsWaiting, [:], stored)
        return versions.count
    }

    /// An outbox entry deleted (sent, dead-lettered, a copy of one sent): one fewer waiting.
    private func leaveOutbox(_ key: String, version: UInt64) {
        guard (try? dependencies.store.delete(key, ifVersion: version)) == true else { return }
        dependencies.metrics.add(MetricCatalog.eventsWaiting, [:], -1)
    }

    /// The delivery figures of one batch to `dataset`: what Meta took, and the failure if any
    /// (`pixelId`, the default pixel, names the figures kept before datasets had their own).
    package func recordDelivery(_ events: [NormalizedEvent], failure: String?, dataset: String, pixelId: String?) {
        dependencies.metrics.add(MetricCatalog.eventsSent, [:], events.count)
        guard !isBeingPurged, !events.isEmpty || failure != nil else { return }
        records.updateStats(tenant) { stats in
            stats.record(sent: events.count, failure: failure, dataset: dataset, pixelId: pixelId, at: now)
            for event in events {
                for key in event.matchKeys where ConversionEvent.matchKeysTracked.contains(key) {
                    stats.eventsWithKey[key, default: 0] += 1
                }
            }
        }
    }

    /// When Meta says a dataset (pixel) does not exist or cannot be reached, the integration says
    /// so (settings' `pixelStatus` and `datasetStatus`) and Compass is told once; a delivery to it
    /// that goes through clears it. `integration` is the record as the caller read it: nothing
    /// more is read when it already says what this outcome says.
    package func notePixelStatus(_ failure: GraphFailure?, sent: Bool, integration: Integration, dataset: String) {
        let unavailable = failure?.isPixelRefusal == true
        let known = integration.problem(of: dataset) != nil
        guard unavailable ? !known : (sent && known) else { return }
        let lifecycle = IntegrationLifecycle(dependencies: dependencies)
        let reason = failure.map { EventDelivery.reason($0) } ?? ""
        let changed = lifecycle.update(tenant) { integration in
            guard integration.config.datasetsInUse.contains(dataset), (integration.problem(of: dataset) == nil) == unavailable else {
                return false
            }
            integration.setProblem(unavailable ? PixelProblem(reason: reason, since: now) : nil, of: dataset)
            return true
        }
        guard changed else { return }
        dependencies.metrics.add(MetricCatalog.pixelsUnavailable, [:], unavailable ? 1 : -1)
        if unavailable {
            dependencies.logger.warn("pixel_unavailable", (failure?.logFields ?? [:]).merging(["dataset": .string(dataset)]) { a, _ in a })
            lifecycle.enqueueNotice(
                CompassNotice(
                    type: "integration.pixel_unavailable", tenant: tenant, reason: "pixel_unavailable", time: now, dataset: dataset))
        } else {
            dependencies.logger.info("pixel_available_again", ["dataset": .string(dataset)])
        }
    }

    /// When Meta refuses the token, the tenant must connect again; events wait. A permission
    /// error on the pixel's events is the pixel's (`notePixelStatus`), unless `debug_token` says
    /// the token itself is no longer valid.
    package func markNeedsReauthIfRefused(_ failure: GraphFailure, delivery: EventDelivery) {
        switch failure.kind {
        case .invalidToken:
            IntegrationLifecycle(dependencies: dependencies).markNeedsReauth(tenant: tenant, reason: "token_invalid")
        case .permission:
            guard let info = try? delivery.graph.debugToken(delivery.token), !info.isValid else { return }
            IntegrationLifecycle(dependencies: dependencies).markNeedsReauth(tenant: tenant, reason: "token_invalid")
        default:
            return
        }
    }

    // MARK: Drain

    package struct DrainSummary: Encodable, Sendable, Equatable {
        /// Why a drain sent nothing; in an answer, as words.
        package enum Skip: Encodable, Sendable, Equatable {
            /// Another drain of the tenant holds the lease: it sends, this one leaves it alone.
            case leaseHeld
            /// No integration: the tenant's leftover events were deleted.
            case notConnected
            /// Connected, but its events must wait (needs_reauth, no pixel, no readable token).
            case waiting(String)

            package var reason: String {
                switch self {
                case .leaseHeld: "another drain holds the lease"
                case .notConnected: "not connected"
                case .waiting(let why): why
                }
            }

            package func encode(to encoder: any Encoder) throws {
                var container = encoder.singleValueContainer()
                try container.encode(reason)
            }
        }

        package var sent = 0
        package var retried = 0
        package var dead = 0
        package var waiting = 0
        /// Queued copies of events delivered meanwhile by another copy: removed, not sent.
        package var duplicates = 0
        package var skipped: Skip?
        /// Queued or dead-lettered events of a tenant without an integration: deleted.
        package var removed = 0
        /// When the earliest event left in the outbox is to be tried next; nil when none is left
        /// (or the drain was skipped).
        package var nextAttemptAt: Date?

        mutating func next(_ instant: Date) { nextAttemptAt = min(nextAttemptAt ?? instant, instant) }
    }

    /// Sends what is due in the tenant's outbox, under a lease so that overlapping drains never
    /// send an event twice. Entries past Meta's window or out of attempts are dead-lettered.
    package func drain() throws(StoreError) -> DrainSummary {
        var summary = DrainSummary()
        let leaseKey = RecordKey.drainLease(tenant)
        let lease: UInt64
        do {
            lease = try dependencies.store.create(leaseKey, Array("{}".utf8), ttl: Self.leaseSeconds)
        } catch .alreadyExists {
            summary.skipped = .leaseHeld
            return summary
        }
        defer { _ = try? dependencies.store.delete(leaseKey, ifVersion: lease) }
        guard let (sending, cipher) = try drainContext(&summary) else { return summary }
        // Datasets Meta refused in this drain: their events wait; the other datasets' go on.
        var held: [String: GraphFailure] = [:]
        var cursor: String? = nil
        repeat {
            let page = try dependencies.store.list(prefix: RecordKey.outboxPrefix(tenant), after: cursor, limit: EventDelivery.batchLimit)
            cursor = page.cursor
            let due = try takeDue(page.entries, cipher: cipher, into: &summary)
            if try deliver(due, sending: sending, held: &held, into: &summary) != nil {
                // Pages not read after the failure may hold events due now: a minute from now.
                if cursor != nil { summary.next(now.addingTimeInterval(60)) }
                return summary
            }
        } while cursor != nil
        switch try? dependencies.store.list(prefix: RecordKey.outboxPrefix(tenant), after: nil, limit: 1).entries.isEmpty {
        case true?: WaitingSince(store: dependencies.store).end(tenant)
        // Still holding events: known to, unless a race with a send lost the entry (then from now).
        case false?: try? WaitingSince(store: dependencies.store).start(tenant, at: now)
        case nil: break
        }
        return summary
    }

    /// One page's due events, one batch per destination. A failure Meta gives for one dataset
    /// holds that dataset's events only (`held`); any other failure defers the rest of the page
    /// and is returned: the drain stops.
    private func deliver(
        _ due: [DueEvent], sending: Sending, held: inout [String: GraphFailure], into summary: inout DrainSummary
    ) throws(StoreError) -> GraphFailure? {
        let settings = sending.integration.config
        let groups = Destination.group(due) { destination(of: $0.entry, settings: settings) }
        // Routed nowhere now (a route removed, no default pixel): released, looked at again later.
        let nowhere = due.filter { settings.dataset(for: $0.entry.actionSource) == nil }
        if !nowhere.isEmpty {
            settle(nowhere.map(\.event), as: nil)
            summary.waiting += nowhere.count
            summary.next(now.addingTimeInterval(RefreshCronHandler.waitingRecheck))
        }
        for (position, (destination, group)) in groups.enumerated() {
            if let failure = held[destination.dataset] {
                for taken in group { try retryLater(taken, after: failure, into: &summary) }
                continue
            }
            let delivery = sending.delivery(to: destination)
            let report = delivery.deliver(group.map(\.event))
            try settleDelivered(report, of: group, into: &summary)
            notePixelStatus(report.failure, sent: !report.sent.isEmpty, integration: sending.integration, dataset: destination.dataset)
            recordDelivery(
                report.sent.map { group[$0].event }, failure: report.failure.map { "\($0.kind)" }, dataset: destination.dataset,
                pixelId: settings.pixelId)
            guard let failure = report.failure else { continue }
            markNeedsReauthIfRefused(failure, delivery: delivery)
            guard DeliveryMachine.holdsOnlyItsDataset(failure) else {
                for (_, rest) in groups[(position + 1)...] {
                    for taken in rest { try retryLater(taken, as: DeliveryMachine.untried(after: failure), into: &summary) }
                }
                return failure
            }
            held[destination.dataset] = failure
        }
        return nil
    }

    /// A queued event taken by a drain: its record, the version read, and the event opened.
    private typealias DueEvent = (key: String, version: UInt64, entry: OutboxEntry, event: NormalizedEvent)

    /// What the drain sends with, or nil with `summary` saying why it sends nothing. A tenant
    /// without an integration (left by a send or a drain that raced a disconnect or a data
    /// deletion) keeps nothing and is not drained again.
    private func drainContext(_ summary: inout DrainSummary) throws(StoreError) -> (Sending, CredentialCipher)? {
        guard let (integration, _) = try records.loadUnlessCorrupt(Integration.self, at: RecordKey.integration(tenant)) else {
            summary.skipped = .notConnected
            summary.removed = try removeEvents()
            if summary.removed > 0 { dependencies.logger.warn("events_of_disconnected_tenant_removed", ["events": .int(summary.removed)]) }
            return nil
        }
        do {
            let cipher = try dependencies.cipher()
            switch try context(for: integration) {
            case .waiting(let why):
                summary.skipped = .waiting(why)
                summary.waiting = try records.count(prefix: RecordKey.outboxPrefix(tenant))
                return nil
            case .ready(let sending):
                return (sending, cipher)
            }
        } catch let error as StoreError {
            throw error
        } catch {
            summary.skipped = .waiting("cannot send: \(error)")
            return nil
        }
    }

    /// The entries of one page that are due, opened and claimed; the others counted as waiting,
    /// dead-lettered (past Meta's window) or removed (a copy was delivered meanwhile).
    private func takeDue(
        _ entries: [(key: String, value: Versioned)], cipher: CredentialCipher,
        into summary: inout DrainSummary
    ) throws(StoreError) -> [DueEvent] {
        var due: [DueEvent] = []
        for (key, value) in entries {
            let dedup = String(key.dropFirst(RecordKey.outboxPrefix(tenant).count))
            guard let entry = try? JSON.decode(OutboxEntry.self, from: value.value) else {
                dependencies.logger.error("outbox_entry_unreadable", ["key": .string(key)])
                continue
            }
            switch DeliveryMachine.atDrain(entry, now: now) {
            case .deadLetter(let reason):
                try deadLetter(entry, key: key, version: value.version, reason: reason)
                summary.dead += 1
            case .send:
                let event: NormalizedEvent
                do {
                    event = try entry.event(tenant: tenant, dedupKey: dedup, cipher: cipher)
                } catch {
                    // Sealed under a key no longer configured, or altered: it stays for an operator.
                    dependencies.logger.error("outbox_entry_unreadable", ["key": .string(key), "error": .string("\(error)")])
                    continue
                }
                // The same claim as a direct send: a copy delivered meanwhile is not sent again.
                switch DeliveryMachine.afterClaim(try claimQueued(dedup), queued: true) {
                case .send: due.append((key, value.version, entry, event))
                case .duplicate:
                    leaveOutbox(key, version: value.version)
                    dependencies.metrics.add(MetricCatalog.eventsDuplicates)
                    summary.duplicates += 1
                default:
                    summary.waiting += 1
                    summary.next(now.addingTimeInterval(60))
                }
            default:
                summary.waiting += 1
                summary.next(entry.nextAttemptAt)
            }
        }
        return due
    }

    /// Each event of the batch as `DeliveryMachine` says: the events Meta took leave the outbox
    /// as sent, those it refused are dead-lettered, and those a failure deferred wait with a
    /// backoff or are dead-lettered after their last attempt.
    private func settleDelivered(_ report: EventDelivery.Report, of due: [DueEvent], into summary: inout DrainSummary) throws(StoreError) {
        var sent: [NormalizedEvent] = []
        for (position, taken) in due.enumerated() {
            switch DeliveryMachine.afterDelivery(position, of: report) {
            case .markSent:
                leaveOutbox(taken.key, version: taken.version)
                sent.append(taken.event)
            case .reject(let code, let reason):
                try deadLetter(taken.entry, key: taken.key, version: taken.version, reason: "\(code): \(reason)")
                summary.dead += 1
            default:
                guard let failure = report.failure else { continue }
                try retryLater(taken, after: failure, into: &summary)
            }
        }
        settle(sent, as: .sent)
        summary.sent += sent.count
    }

    /// A queued event a failure deferred: tried again later, or dead-lettered after its last attempt.
    private func retryLater(_ taken: DueEvent, after failure: GraphFailure, into summary: inout DrainSummary) throws(StoreError) {
        var entry = taken.entry
        entry.lastError = "\(failure.kind)"
        var deferred = taken
        deferred.entry = entry
        try retryLater(deferred, as: DeliveryMachine.afterFailedAttempt(attempts: entry.attempts, failure: failure), into: &summary)
    }

    /// A queued event waiting again, or dead-lettered, as `DeliveryMachine` decided.
    private func retryLater(_ taken: DueEvent, as step: DeliveryMachine.Step, into summary: inout DrainSummary) throws(StoreError) {
        var entry = taken.entry
        switch step {
        case .retry(let seconds, let countsAttempt):
            if countsAttempt { entry.attempts += 1 }
            entry.nextAttemptAt = now.addingTimeInterval(TimeInterval(seconds))
            _ = try? records.replace(entry, at: taken.key, version: taken.version)
            settle([taken.event], as: nil)
            summary.retried += 1
            summary.next(entry.nextAttemptAt)
        case .deadLetter(let reason):
            entry.attempts += 1
            try deadLetter(entry, key: taken.key, version: taken.version, reason: reason)
            summary.dead += 1
        default:
            break
        }
    }

    /// The drain's claim of a queued event: from no state (or `queued`, from an earlier build)
    /// to `claimed`, unless it was sent or is being sent.
    private func claimQueued(_ dedup: String) throws(StoreError) -> Claim {
        let key = RecordKey.sent(tenant, dedup)
        let claimed = EventState.claimed.stored
        let life = EventState.claimed.lifetimeSeconds
        do {
            guard let current = try dependencies.store.get(key) else {
                return .claimed(try dependencies.store.create(key, claimed, ttl: life))
            }
            switch EventState(stored: current) {
            case .sent: return .duplicate
            case .claimed: return .pending
            case .queued, nil: return .claimed(try dependencies.store.compareAndSwap(key, claimed, expected: current.version, ttl: life))
            }
        } catch {
            // Another copy claimed it between the read and the write: it is being sent.
            guard error == .alreadyExists || error == .versionMismatch else { throw error }
            return .pending
        }
    }

    /// Every queued and dead-lettered event of the tenant deleted, under its outbox lock.
    package func removeEvents() throws(StoreError) -> Int {
        do {
            return try withOutboxLock { () throws(QueueFailure) in
                do throws(StoreError) {
                    let queued = try dependencies.store.deleteAll(prefix: RecordKey.outboxPrefix(tenant))
                    dependencies.metrics.add(MetricCatalog.eventsWaiting, [:], -queued)
                    WaitingSince(store: dependencies.store).end(tenant)
                    return queued + (try dependencies.store.deleteAll(prefix: RecordKey.deadPrefix(tenant)))
                } catch {
                    throw .store(error)
                }
            }
        } catch {
            if case .store(let error) = error { throw error }
            throw .unavailable("the outbox of the tenant is held by another request")
        }
    }

    /// How long a dead letter is kept: a day past Meta's window for the event (no replay could
    /// send it later), at least a day.
    package func deadLetterSeconds(_ entry: OutboxEntry) -> Int {
        let days: Int64 = entry.actionSource == "physical_store" ? 62 : 7
        return Int(max(86_400, entry.eventTime + days * 86_400 + 86_400 - now.unixSeconds))
    }

    private func deadLetter(_ entry: OutboxEntry, key: String, version: UInt64, reason: String) throws(StoreError) {
        var dead = entry
        dead.deadReason = reason
        let dedup = String(key.split(separator: "/").last!)
        // Under the outbox lock, and never for a tenant whose purge began.
        let written: Bool
        do {
            written = try withOutboxLock { () throws(QueueFailure) in
                guard !isBeingPurged else { return false }
                do throws(StoreError) {
                    try records.save(dead, at: RecordKey.dead(tenant, dedup), ttl: deadLetterSeconds(entry))
                } catch {
                    throw .store(error)
                }
                return true
            }
        } catch {
            if case .store(let error) = error { throw error }
            // The outbox is busy: the entry stays queued and is dead-lettered at the next drain.
            return
        }
        guard written else {
            leaveOutbox(key, version: version)
            return
        }
        dependencies.metrics.add(MetricCatalog.eventsDeadLettered)
        leaveOutbox(key, version: version)
        // Not queued any more: a new copy from the pipeline may be sent.
        _ = try? dependencies.store.delete(RecordKey.sent(tenant, dedup))
        dependencies.logger.warn(
            "event_dead_lettered", ["event_name": .string(entry.eventName), "reason": .string(EventDelivery.masked(reason))])
    }

    package struct ReplaySummary: Encodable, Sendable, Equatable {
        package var replayed = 0
        package var expired = 0
        /// Left dead-lettered because the outbox holds its bound; replay again once it drains.
        package var overLimit = 0
        /// Dead letters of events another copy delivered meanwhile: removed, not replayed.
        package var alreadySent = 0
    }

    /// Moves dead-lettered events still inside Meta's window back to the outbox, as many as
    /// the outbox bound allows (under the same lock as queueing).
    package func replayDeadLetters() throws(QueueFailure) -> ReplaySummary {
        try withOutboxLock { () throws(QueueFailure) in
            do throws(StoreError) {
                return try moveDeadLetters()
            } catch {
                throw .store(error)
            }
        }
    }

    private func moveDeadLetters() throws(StoreError) -> ReplaySummary {
        var summary = ReplaySummary()
        // Whatever comes back is due now: the outbox index says so before it is moved.
        try DueIndex(store: dependencies.store, prefix: DueIndex.outboxPrefix).add(tenant, at: now)
        var room = dependencies.config.routes.outboxMaxEvents - (try dependencies.store.count(prefix: RecordKey.outboxPrefix(tenant)))
        var cursor: String? = nil
        repeat {
            let page = try dependencies.store.list(prefix: RecordKey.deadPrefix(tenant), after: cursor, limit: 500)
            cursor = page.cursor
            for (key, value) in page.entries {
                guard var entry = try? JSON.decode(OutboxEntry.self, from: value.value) else { continue }
                let dedup = String(key.split(separator: "/").last!)
                // Whether another copy was delivered meanwhile (not asked past Meta's window).
                var delivered = false
                if !entry.isOutsideMetaWindow(now: now), let state = try dependencies.store.get(RecordKey.sent(tenant, dedup)) {
                    delivered = EventState(stored: state) == .sent
                }
                switch DeliveryMachine.atReplay(entry, delivered: delivered, room: room, now: now) {
                case .expired:
                    summary.expired += 1
                    continue
                case .remove:
                    _ = try? dependencies.store.delete(key, ifVersion: value.version)
                    summary.alreadySent += 1
                    continue
                case .overLimit:
                    summary.overLimit += 1
                    continue
                case .requeue:
                    break
                }
                entry.attempts = 0
                entry.deadReason = nil
                entry.nextAttemptAt = now
                let queuedAlready = try dependencies.store.get(RecordKey.outbox(tenant, dedup)) != nil
                try WaitingSince(store: dependencies.store).start(tenant, at: now)
                try records.save(entry, at: RecordKey.outbox(tenant, dedup))
                if !queuedAlready { dependencies.metrics.add(MetricCatalog.eventsWaiting) }
                _ = try? dependencies.store.delete(key, ifVersion: value.version)
                summary.replayed += 1
                room -= 1
            }
        } while cursor != nil
        return summary
    }
}

extension GraphFailure {
    package var retryAfter: Int? {
        if case .api(_, _, let seconds) = self { return seconds }
        return nil
    }
}
