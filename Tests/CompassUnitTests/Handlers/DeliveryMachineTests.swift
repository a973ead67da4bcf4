import Foundation
import Testing

@testable import CompassHandlers
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassTestSupport

/// Every transition of `DeliveryMachine`, the decisions both the request path and the outbox
/// drain perform.
@Suite struct DeliveryMachineTests {
    typealias Step = DeliveryMachine.Step

    static func failure(code: Int, subcode: Int? = nil, status: Int = 400, retryAfter: Int? = nil) -> GraphFailure {
        .api(GraphAPIError(message: "m", code: code, errorSubcode: subcode), httpStatus: status, retryAfterSeconds: retryAfter)
    }

    @Test func aClaimDecidesWhoSends() {
        #expect(DeliveryMachine.afterClaim(.claimed(7), queued: false) == .send)
        #expect(DeliveryMachine.afterClaim(.claimed(7), queued: true) == .send)
        #expect(DeliveryMachine.afterClaim(.duplicate, queued: false) == .duplicate)
        #expect(DeliveryMachine.afterClaim(.duplicate, queued: true) == .duplicate)
        // A request's copy that finds another still sending goes to the outbox; a queued copy waits.
        #expect(DeliveryMachine.afterClaim(.pending, queued: false) == .queue(reason: "another copy was being sent", retryAfter: nil))
        #expect(DeliveryMachine.afterClaim(.pending, queued: true) == .wait)
    }

    @Test func metasAnswerDecidesEachEventOfTheBatch() {
        var report = EventDelivery.Report()
        report.sent = [0, 2]
        report.rejected = [(index: 1, code: "meta_invalid_event", message: "Too little customer information (2804050)")]
        report.deferred = [3]
        report.failure = Self.failure(code: 17, status: 429, retryAfter: 90)
        #expect(DeliveryMachine.afterDelivery(0, of: report) == .markSent)
        #expect(DeliveryMachine.afterDelivery(2, of: report) == .markSent)
        #expect(
            DeliveryMachine.afterDelivery(1, of: report)
                == .reject(code: "meta_invalid_event", reason: "Too little customer information (2804050)"))
        #expect(DeliveryMachine.afterDelivery(3, of: report) == .queue(reason: "rateLimited", retryAfter: 90))
    }

    @Test func aFailedAttemptBacksOffDoublingThenDeadLetters() {
        let transient = Self.failure(code: 2, status: 500)
        let expected = [60, 120, 240, 480, 960, 1920, 3600, 3600]
        for (attempts, seconds) in expected.enumerated() {
            #expect(
                DeliveryMachine.afterFailedAttempt(attempts: attempts, failure: transient)
                    == .retry(afterSeconds: seconds, countsAttempt: true))
        }
        #expect(
            DeliveryMachine.afterFailedAttempt(attempts: EventPipeline.maxAttempts - 2, failure: transient)
                == .retry(afterSeconds: 3600, countsAttempt: true))
        #expect(
            DeliveryMachine.afterFailedAttempt(attempts: EventPipeline.maxAttempts - 1, failure: transient)
                == .deadLetter(reason: "max_attempts"))
        // Meta's own wait wins when it is longer.
        #expect(
            DeliveryMachine.afterFailedAttempt(attempts: 0, failure: Self.failure(code: 17, status: 429, retryAfter: 900))
                == .retry(afterSeconds: 900, countsAttempt: true))
    }

    /// A pixel Meta cannot reach, or one the token lacks a permission on, is not the event's
    /// fault: hourly, without using up attempts.
    @Test func aPixelRefusalWaitsHourlyWithoutUsingAttempts() {
        for failure in [Self.failure(code: 100, subcode: 33), Self.failure(code: 200), Self.failure(code: 10)] {
            for attempts in [0, 5, EventPipeline.maxAttempts - 1] {
                #expect(
                    DeliveryMachine.afterFailedAttempt(attempts: attempts, failure: failure)
                        == .retry(afterSeconds: 3600, countsAttempt: false))
            }
        }
    }

    @Test func aQueuedEventIsSentWhenDueAndDeadLetteredPastMetasWindow() throws {
        let now = Date(timeIntervalSince1970: 1_795_820_995)
        let cipher = CredentialCipher(
            keys: try CredentialKeys(current: Data(repeating: 3, count: 32).base64EncodedString(), previous: nil), random: SecureRandom())
        func entry(source: String, ageDays: Double, dueIn: TimeInterval) -> OutboxEntry {
            let event = NormalizedEvent(
                eventId: "e", eventName: "Lead", eventTime: now.unixSeconds - Int64(ageDays * 86_400), actionSource: source,
                payload: .object([:]), matchKeys: [], warnings: [])
            var queued = OutboxEntry(event, tenantId: "t", now: now, error: nil, cipher: cipher)
            queued.nextAttemptAt = now.addingTimeInterval(dueIn)
            return queued
        }
        #expect(DeliveryMachine.atDrain(entry(source: "website", ageDays: 1, dueIn: -1), now: now) == .send)
        #expect(DeliveryMachine.atDrain(entry(source: "website", ageDays: 1, dueIn: 60), now: now) == .wait)
        #expect(
            DeliveryMachine.atDrain(entry(source: "website", ageDays: 7, dueIn: -1), now: now) == .deadLetter(reason: "outside_meta_window")
        )
        // A physical store's window is 62 days.
        #expect(DeliveryMachine.atDrain(entry(source: "physical_store", ageDays: 30, dueIn: -1), now: now) == .send)
        #expect(
            DeliveryMachine.atDrain(entry(source: "physical_store", ageDays: 62, dueIn: -1), now: now)
                == .deadLetter(reason: "outside_meta_window"))
        // A dead letter at replay: back in the window's outbox, removed when delivered, left when
        // expired (whatever else holds) or when the outbox has no room.
        let dead = entry(source: "website", ageDays: 1, dueIn: 0)
        #expect(DeliveryMachine.atReplay(dead, delivered: false, room: 1, now: now) == .requeue)
        #expect(DeliveryMachine.atReplay(dead, delivered: true, room: 1, now: now) == .remove)
        #expect(DeliveryMachine.atReplay(dead, delivered: true, room: 0, now: now) == .remove)
        #expect(DeliveryMachine.atReplay(dead, delivered: false, room: 0, now: now) == .overLimit)
        let old = entry(source: "website", ageDays: 8, dueIn: 0)
        #expect(DeliveryMachine.atReplay(old, delivered: true, room: 1, now: now) == .expired)
        #expect(
            DeliveryMachine.atReplay(entry(source: "physical_store", ageDays: 30, dueIn: 0), delivered: false, room: 1, now: now)
                == .requeue)
    }
}
