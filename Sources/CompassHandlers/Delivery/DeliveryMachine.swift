import CompassMeta
import CompassPlatform

/// The states an accepted event goes through, as pure decisions: given what just happened to
/// an event, what is to be done with it. `SendEventHandler` (a request) and `EventPipeline.drain`
/// (the outbox) perform the steps; neither decides them. Every transition is held by
/// `DeliveryMachineTests`.
///
///     claim ─┬─ claimed ─ deliver ─┬─ sent
///            │                     ├─ rejected by Meta (a request: rejected; the outbox: dead letter)
///            │                     └─ deferred by a failure ─ queued (a request)
///            │                                              └─ retried later, or dead letter (the outbox)
///            ├─ duplicate (another copy was delivered; a queued copy holds no claim, see `EventPipeline.EventState`)
///            └─ another copy still sending ─ queued
///
///     dead letter ─ replay ─┬─ queued again, due now (in Meta's window, the outbox has room)
///                           ├─ removed (another copy was delivered meanwhile)
///                           └─ left (past Meta's window, or the outbox at its bound)
package enum DeliveryMachine {
    /// What to do with one event next.
    package enum Step: Equatable, Sendable {
        /// This copy holds the claim: send it to Meta.
        case send
        /// Another copy was delivered: nothing to send.
        case duplicate
        /// Into the outbox, with why it waits (and how long Meta asked to wait).
        case queue(reason: String, retryAfter: Int?)
        /// Meta took it: mark it sent for Meta's 48-hour deduplication window.
        case markSent
        /// Meta refused it: the caller is told why (a request), or it is dead-lettered (the outbox).
        case reject(code: String, reason: String)
        /// A queued event's attempt failed: try again after `seconds`; `countsAttempt` is false
        /// when the fault is the pixel's, not the event's.
        case retry(afterSeconds: Int, countsAttempt: Bool)
        /// Out of the outbox for good, with the reason.
        case deadLetter(reason: String)
        /// Not due yet, or another drain's copy is being sent: left for later.
        case wait
    }

    /// After a request or a drain tried to claim the event.
    package static func afterClaim(_ claim: EventPipeline.Claim, queued: Bool) -> Step {
        switch claim {
        case .claimed: .send
        case .duplicate: .duplicate
        // A request's copy goes to the outbox; a queued copy stays where it is.
        case .pending: queued ? .wait : .queue(reason: "another copy was being sent", retryAfter: nil)
        }
    }

    /// One event of a batch after Meta's answer: `position` in the batch.
    package static func afterDelivery(_ position: Int, of report: EventDelivery.Report) -> Step {
        if report.sent.contains(position) { return .markSent }
        if let rejection = report.rejected.first(where: { $0.index == position }) {
            return .reject(code: rejection.code, reason: rejection.message)
        }
        guard let failure = report.failure, report.deferred.contains(position) else {
            return .queue(reason: "not sent", retryAfter: nil)
        }
        return .queue(reason: "\(failure.kind)", retryAfter: failure.retryAfter)
    }

    /// A queued event whose attempt was deferred by `failure`, after `attempts` earlier ones.
    /// A pixel Meta cannot reach is not the event's fault: it waits hourly, its attempts
    /// untouched, until Meta's window ends. Otherwise the backoff doubles from a minute to an
    /// hour, and after `EventPipeline.maxAttempts` the event is dead-lettered.
    package static func afterFailedAttempt(attempts: Int, failure: GraphFailure) -> Step {
        if failure.isPixelRefusal { return .retry(afterSeconds: max(3600, failure.retryAfter ?? 0), countsAttempt: false) }
        let made = attempts + 1
        guard made < EventPipeline.maxAttempts else { return .deadLetter(reason: "max_attempts") }
        let backoff = min(60 * (1 << min(made - 1, 6)), 3600)
        return .retry(afterSeconds: max(backoff, failure.retryAfter ?? 0), countsAttempt: true)
    }

    /// A queued event of a dataset not tried because `failure`, met with another dataset,
    /// stopped the drain: it waits as long as Meta asked, a minute at least, its attempts
    /// untouched (it was never sent).
    package static func untried(after failure: GraphFailure) -> Step {
        .retry(afterSeconds: max(60, failure.retryAfter ?? 0), countsAttempt: false)
    }

    /// Whether `failure`, met sending to one dataset, holds that dataset's events only: Meta
    /// cannot reach that dataset (gone, no longer shared, no permission on it), while its other
    /// datasets may take theirs. Any other failure (Meta down, rate limits, the token) stops
    /// the rest of the request or drain too.
    package static func holdsOnlyItsDataset(_ failure: GraphFailure) -> Bool { failure.isPixelRefusal }

    /// What a replay does with one dead letter.
    package enum Replay: Equatable, Sendable {
        /// Back into the outbox, its attempts reset, due now.
        case requeue
        /// Another copy was delivered meanwhile: the dead letter goes, nothing is sent.
        case remove
        /// Past Meta's window: it stays dead until it expires.
        case expired
        /// The outbox holds its bound: it stays dead; replay again once the outbox drains.
        case overLimit
    }

    /// A dead letter when a replay reads it: `delivered` when its event is marked sent, `room`
    /// the outbox's free places.
    package static func atReplay(_ entry: OutboxEntry, delivered: Bool, room: Int, now: Date) -> Replay {
        if entry.isOutsideMetaWindow(now: now) { return .expired }
        if delivered { return .remove }
        return room > 0 ? .requeue : .overLimit
    }

    /// A queued event when a drain reads it: past Meta's window it is dead-lettered; not due yet,
    /// it waits; due, it is claimed.
    package static func atDrain(_ entry: OutboxEntry, now: Date) -> Step {
        if entry.isOutsideMetaWindow(now: now) { return .deadLetter(reason: "outside_meta_window") }
        return entry.nextAttemptAt <= now ? .send : .wait
    }
}
