import Foundation
import Testing

@testable import CompassHandlers
@testable import CompassPlatform
@testable import CompassTestSupport

/// The daily work of a tenant (token check, quality fetch) comes a day after the last, moved by up
/// to half an hour either way (README, docs/meta.md): tenants connected together spread over the
/// hour around it, earlier as well as later.
@Suite struct DailyScheduleTests {
    @Test func theJitterReachesBothEnds() {
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        let earliest = DueIndex.nextDaily(after: now, random: FixedRandom(byte: 0x00))
        let latest = DueIndex.nextDaily(after: now, random: FixedRandom(byte: 0xff))
        let middle = DueIndex.nextDaily(after: now, random: FixedRandom(byte: 0x80))
        #expect(earliest.timeIntervalSince(now) == DueIndex.period - DueIndex.jitter)
        #expect(abs(latest.timeIntervalSince(now) - (DueIndex.period + DueIndex.jitter)) < 1)
        #expect(abs(middle.timeIntervalSince(now) - DueIndex.period) < 10)  // 0x80 bytes: just over the middle
        #expect(DueIndex.jitter == 1800)
    }
}
