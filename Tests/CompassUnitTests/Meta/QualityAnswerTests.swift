import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// Meta's Dataset Quality answer kept whole, shown in settings, and its degradation told.
@Suite struct QualityAnswerTests {
    private func settings(_ world: World) -> [String: Any] {
        world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings")).json
    }

    @Test func settingsShowsTheWholeAnswerAndADegradationIsToldOnce() throws {
        let world = World(environment: [
            "CRON_SECRET": "cron-secret-0123456789abcdef", "COMPASS_WEBHOOK_URL": "https://compass.example/hooks/meta",
            "COMPASS_WEBHOOK_SECRET": "webhook-secret-0123456789abcdef",
        ])
        world.readyTenant()
        #expect(world.send(world.batch(["q1", "q2"])).status == 200)
        #expect(world.drain().quality.fetched == 1)
        let quality = try #require(settings(world)["eventMatchQuality"] as? [String: Any])
        #expect(quality["fetchedAt"] != nil && quality["lastFailure"] == nil)
        let event = try #require((quality["events"] as? [[String: Any]])?.first)
        #expect(event["eventName"] as? String == "Lead")
        #expect((event["dedupeKeys"] as? [[String: Any]])?.first?["browserCoverage"] as? Double == 82)
        #expect((event["eventCoverage"] as? [String: Any])?["goalPercentage"] as? Double == 75)
        #expect((event["dataFreshness"] as? [String: Any])?["uploadFrequency"] as? String == "real_time")
        #expect((event["additionalConversionsReported"] as? [String: Any])?["percentage"] as? Double == 12.5)
        #expect(event["diagnostics"] is [Any])

        // Browser/server dedupe coverage falls under 50 %: one notice, and not again the day after.
        let lowered = Array(#"{"browserDedupeCoverage":30}"#.utf8)
        #expect(
            world.sandbox.handle(.init(method: "POST", path: "/sandbox/settings", query: QueryParameters(), body: lowered)).status == 200)
        func degradedNotices() -> Int {
            let page = try? world.store.list(prefix: "meta/notice/", after: nil, limit: 100)
            return (page?.entries ?? []).filter { String(decoding: $0.value.value, as: UTF8.self).contains("integration.quality_degraded") }
                .count
        }
        world.transport.intercept.withLock { $0 = { $0.url.hasPrefix("https://compass.example/hooks") ? HTTPResponse(status: 500) : nil } }
        world.clock.advance(DueIndex.period + DueIndex.jitter + 60)
        #expect(world.drain().quality.fetched == 1)
        #expect(degradedNotices() == 1)
        world.clock.advance(DueIndex.period + DueIndex.jitter + 60)
        #expect(world.drain().quality.fetched == 1)
        #expect(degradedNotices() == 1)
    }

    @Test func aScoreThatDropsByOneIsADegradation() {
        func fetch(_ score: Double, dedupe: Double = 90) -> MatchQuality {
            MatchQuality(
                pixelId: "1", fetchedAt: Date(),
                events: [
                    EventQuality(
                        eventName: "Purchase", compositeScore: score, matchKeyCoverage: [:],
                        dedupeKeys: [.init(key: "event_id", browserEventsWithKey: nil, serverEventsWithKey: nil, browserCoverage: dedupe)])
                ])
        }
        #expect(fetch(6.0).degradation(since: fetch(7.0)) == "match_quality_dropped")
        #expect(fetch(6.1).degradation(since: fetch(7.0)) == nil)
        #expect(fetch(7.0, dedupe: 49).degradation(since: fetch(7.0, dedupe: 50)) == "dedupe_coverage_low")
        #expect(fetch(7.0, dedupe: 40).degradation(since: fetch(7.0, dedupe: 45)) == nil)
    }

    /// A fetch Meta refuses keeps the last figures, says why in settings, and is tried an hour on.
    @Test func aRefusedFetchIsShownWithMetasMessage() throws {
        let world = World()
        world.readyTenant()
        world.transport.intercept.withLock {
            $0 = { request in
                guard request.url.contains("/dataset_quality?") else { return nil }
                let body =
                    #"{"error":{"message":"(#100) Tried accessing nonexisting field (web) on node type (X)","type":"OAuthException","code":100}}"#
                return HTTPResponse(status: 400, headers: ["content-type": "application/json"], body: Array(body.utf8))
            }
        }
        #expect(world.drain().quality.failed == 1)
        let quality = try #require(settings(world)["eventMatchQuality"] as? [String: Any])
        let failure = try #require(quality["lastFailure"] as? [String: Any])
        #expect((failure["message"] as? String)?.contains("nonexisting field (web)") == true)
        #expect(quality["fetchedAt"] == nil)
        world.transport.intercept.withLock { $0 = nil }
        world.clock.advance(QualityFetcher.retryDelay + 1)
        #expect(world.drain().quality.fetched == 1)
        #expect((settings(world)["eventMatchQuality"] as? [String: Any])?["lastFailure"] == nil)
    }
}
