import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// Meta's Event Match Quality, fetched by refresh-cron for the chosen pixel (issue 15, part 4).
@Suite struct MatchQualityTests {
    @Test func refreshCronFetchesMetasFiguresForTheChosenPixelDaily() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        #expect(world.send(world.batch(["q1", "q2"])).status == 200)
        func settings() -> [String: Any] { world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings")).json }
        #expect(settings()["eventMatchQuality"] == nil)
        // A newly chosen pixel's figures are due at the next run.
        #expect(world.drain().quality.fetched == 1)
        let quality = try #require(settings()["eventMatchQuality"] as? [String: Any])
        #expect(quality["pixelId"] as? String == "2000101")
        let events = try #require(quality["events"] as? [[String: Any]])
        #expect(events.map { $0["eventName"] as? String } == ["Lead"])
        #expect(events.first?["compositeScore"] as? Double ?? 0 > 2)
        #expect((events.first?["matchKeyCoverage"] as? [String: Double])?["email"] == 100)
        let asked = world.transport.requests.withLock { $0.map(\.url) }.filter { $0.contains("/dataset_quality?") }
        // agent_name is the partner part of partner_agent, lower-cased.
        #expect(asked.count == 1 && asked[0].contains("dataset_id=2000101") && asked[0].contains("agent_name=compass&"))
        // Daily, along the token's check: nothing right after (the entry the pixel's choice made
        // is gone, none written for the next fetch), again a day later.
        #expect(try world.store.list(prefix: DueIndex.qualityPrefix, after: nil, limit: 1).entries.isEmpty)
        #expect(world.drain().quality.fetched == 0)
        world.clock.advance(DueIndex.period + DueIndex.jitter + 60)
        #expect(world.drain().quality.fetched == 1)
        // Another pixel: the old pixel's figures are not shown as its own; the next run fetches.
        let put = world.run(SettingsHandler.self, world.request("PUT", "/api/connect/meta/settings", body: #"{"pixelId":"2000102"}"#))
        #expect(put.status == 200)
        #expect(settings()["eventMatchQuality"] == nil)
        #expect(world.drain().quality.fetched == 1)
        #expect((settings()["eventMatchQuality"] as? [String: Any])?["pixelId"] as? String == "2000102")
    }

    /// A fetch that failed (Meta answering 500) is tried again an hour later: not before (not even
    /// for the extra entry the one-time walk gave the tenant at a random time of the day), and not
    /// a day later.
    @Test func aFailedFetchIsTriedAgainAfterAnHour() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        #expect(world.send(world.batch(["q1"])).status == 200)
        world.queueFault(.serverError, path: "dataset_quality", count: 1)
        #expect(world.drain().quality.failed == 1)
        // An extra entry half an hour on, as a store written before may hold.
        try DueIndex(store: world.store, prefix: DueIndex.qualityPrefix).add("tenant_a", at: world.clock.now.addingTimeInterval(1800))
        world.clock.advance(QualityFetcher.retryDelay - 120)
        let early = world.drain().quality
        #expect(early.fetched == 0 && early.failed == 0, "\(early)")
        world.clock.advance(180)
        #expect(world.drain().quality.fetched == 1)
        #expect(QualityFetcher.retryDelay == 3600)
    }

    /// A store written before holds an entry a tenant for its next daily fetch: each is fetched
    /// when it comes due, unless the figures are less than half a day old, and goes, with no
    /// entry written after it (the token's check brings the next fetch).
    @Test func aDailyEntryFromBeforeIsFetchedWhenDueAndGoes() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        #expect(world.drain().quality.fetched == 1)
        let index = DueIndex(store: world.store, prefix: DueIndex.qualityPrefix)
        func entries() throws -> Int { try world.store.count(prefix: DueIndex.qualityPrefix) }
        try index.add("tenant_a", at: world.clock.now.addingTimeInterval(DueIndex.period / 4))
        world.clock.advance(DueIndex.period / 4 + 60)
        let fresh = world.drain().quality
        #expect(fresh.fetched == 0 && fresh.stale == 1, "\(fresh)")
        #expect(try entries() == 0)
        try index.add("tenant_a", at: world.clock.now.addingTimeInterval(DueIndex.period / 2))
        world.clock.advance(DueIndex.period / 2 + 60)
        let due = world.drain()
        #expect(due.quality.fetched == 1 && due.tokens.checked == 0, "\(due.quality)")
        #expect(try entries() == 0)
    }

    /// Two datasets, one fetch failing: the other's figures are kept, the tenant's one entry
    /// comes due at the failed one's retry, which fetches that one alone; a day on, both.
    @Test func eachDatasetIsFetchedOnItsOwnSchedule() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        let route = #"{"datasets":{"physical_store":"\#(SandboxData.offlineDataset)"}}"#
        #expect(world.run(SettingsHandler.self, world.request("PUT", "/api/connect/meta/settings", body: route)).status == 200)
        world.queueFault(.serverError, path: "dataset_quality", count: 1)
        let first = world.drain().quality
        #expect(first.fetched == 1 && first.failed == 1, "\(first)")
        let entries = try world.store.list(prefix: DueIndex.qualityPrefix, after: nil, limit: 10).entries.map(\.key)
        // (The one-time walk of a store from before the index may have left an extra entry.)
        #expect(entries.contains(DueIndex.key("tenant_a", at: world.clock.now.addingTimeInterval(3600), prefix: DueIndex.qualityPrefix)))
        world.clock.advance(3601)
        #expect(world.drain().quality.fetched == 1)
        #expect(QualityFetcher.kept("tenant_a", dataset: "2000101", records: world.dependencies.records)?.lastFailure == nil)
        #expect(
            QualityFetcher.kept("tenant_a", dataset: SandboxData.offlineDataset, records: world.dependencies.records)?.lastFailure == nil)
        world.clock.advance(DueIndex.period + DueIndex.jitter + 60)
        #expect(world.drain().quality.fetched == 2)
    }

    /// What Meta leaves out stays absent; an answer without `web` is no events.
    @Test func toleratesAnswersWithFieldsLeftOut() throws {
        let world = World()
        world.connectTenant()
        let graph = GraphClient(
            settings: world.config.meta, app: try world.config.meta.app(), transport: world.transport, logger: world.logs.logger())
        world.transport.intercept.withLock {
            $0 = { request in
                guard request.url.contains("/dataset_quality?") else { return nil }
                let body =
                    request.url.contains("dataset_id=1")
                    ? #"{}"#
                    : #"{"web":[{"event_name":"Purchase"},{"event_name":"Lead","event_match_quality":{"match_key_feedback":[{"identifier":"phone"}]}}]}"#
                return HTTPResponse(status: 200, headers: ["content-type": "application/json"], body: Array(body.utf8))
            }
        }
        let token = try world.storedToken()
        #expect(try graph.datasetQuality(pixelId: "1", agentName: "a_1_0", token: token) == [])
        let events = try graph.datasetQuality(pixelId: "2", agentName: "a_1_0", token: token)
        #expect(
            events == [
                EventQuality(eventName: "Purchase", compositeScore: nil, matchKeyCoverage: [:]),
                EventQuality(eventName: "Lead", compositeScore: nil, matchKeyCoverage: [:]),
            ])
    }
}
