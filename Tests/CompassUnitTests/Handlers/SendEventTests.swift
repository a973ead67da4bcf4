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

@Suite struct SendEventTests {
    @Test func deliversOneEventHashedToThePixel() throws {
        let world = World()
        world.readyTenant()
        let response = world.send(
            #"{"eventName":"Purchase","eventTime":\#(world.clock.now.unixSeconds - 10),"actionSource":"website","eventId":"o-1","eventSourceUrl":"https://shop.example/done","userData":{"em":"John_Smith@gmail.com","client_user_agent":"Mozilla/5.0"},"customData":{"value":42,"currency":"USD"}}"#
        )
        #expect(response.status == 200)
        #expect(response.json["status"] as? String == "sent")
        #expect(response.json["eventsReceived"] as? Int == 1)
        #expect((response.json["fbtraceIds"] as? [String])?.count == 1)
        let delivered = world.delivered()
        #expect(delivered.count == 1)
        let event = try #require(delivered.first?["event"])
        #expect(event["user_data"]?["em"] == .string("62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"))
        #expect(delivered.first?["test_event_code"] == nil)
        #expect(!world.logs.text.contains("John_Smith"))
    }

    /// Each accepted batch is logged with Meta's fbtrace_id and its messages, masked.
    @Test func anAcceptedBatchIsLoggedWithItsTraceAndMessages() {
        let world = World()
        world.readyTenant()
        world.transport.decorate.withLock {
            $0 = { request, answer in
                guard request.url.contains("/events?") else { return answer }
                var decorated = answer
                decorated.body = Array(
                    #"{"events_received":1,"messages":["Parameter em for jane@example.com looks unhashed","Too many events from 16505551212"],"fbtrace_id":"AbC123"}"#
                        .utf8)
                return decorated
            }
        }
        #expect(world.send(world.lead("m1", email: "jane@example.com")).status == 200)
        let line = world.logs.all.first { $0.contains("\"events_delivered\"") } ?? ""
        #expect(line.contains("AbC123") && line.contains("Parameter em for [masked] looks unhashed"), "\(line)")
        #expect(!world.logs.text.contains("jane@example.com") && !world.logs.text.contains("16505551212"))
        #expect(EventDelivery.masked("Invalid value 4155550123 for ph (2804050)") == "Invalid value [masked] for ph [masked]")
    }

    @Test func sendsTheTestEventCodeWhenSet() {
        let world = World()
        world.readyTenant(testEventCode: "TEST123")
        #expect(world.send(world.lead("e1")).status == 200)
        #expect(world.delivered().first?["test_event_code"] == .string("TEST123"))
    }

    /// META_PARTNER_AGENT goes with every events request; one not in Meta's
    /// `[partner]_[major]_[minor]` form is a configuration error naming the variable.
    @Test func theConfiguredPartnerAgentGoesWithEveryRequest() {
        let world = World(environment: ["META_PARTNER_AGENT": "acme-cdp_2_13"])
        world.readyTenant()
        #expect(world.send(world.lead("p1")).status == 200)
        #expect(world.delivered().first?["partner_agent"] == .string("acme-cdp_2_13"))
        for bad in ["acme", "acme_2", "acme_x_1", "ac me_1_0", "acme_1_0_0"] {
            #expect(throws: ConfigError.self, "\(bad)") {
                try Config.load(from: world.environment(["META_PARTNER_AGENT": bad]), workingDirectory: "/")
            }
        }
    }

    @Test func fifteenHundredEventsGoInTwoRequests() {
        let world = World()
        world.readyTenant()
        let response = world.send(world.batch((0..<1500).map { "e\($0)" }))
        #expect(response.status == 200)
        #expect(response.json["eventsReceived"] as? Int == 1500)
        #expect(world.transport.paths.filter { $0.hasSuffix("2000101/events") }.count == 2)
        #expect(Set(world.deliveredIds()).count == 1500)
    }

    @Test func aMixedBatchDeliversTheGoodAndReportsTheBad() {
        let world = World()
        world.readyTenant()
        let bad = #"{"eventName":"Lead","eventTime":1,"actionSource":"email","eventId":"old","userData":{"em":"a@b.co"}}"#
        let response = world.send(#"{"events":[\#(world.lead("g1")),\#(bad),\#(world.lead("g2"))]}"#)
        #expect(response.status == 207)
        #expect(response.json["status"] as? String == "partial")
        let rejected = response.json["rejected"] as? [[String: Any]]
        #expect(rejected?.count == 1)
        #expect(rejected?.first?["index"] as? Int == 1)
        #expect(rejected?.first?["eventId"] as? String == "old")
        #expect(rejected?.first?["code"] as? String == "event_too_old")
        let problems = rejected?.first?["problems"] as? [[String: Any]]
        #expect(problems?.count == 1 && problems?.first?["field"] as? String == "eventTime", "\(String(describing: problems))")
        #expect(world.deliveredIds() == ["g1", "g2"])
    }

    @Test func anEventMetaRejectsIsIsolatedAndTheRestDelivered() {
        let world = World()
        world.readyTenant()
        // An event our rules accept but Meta refuses: the sandbox wants a match key besides fbc.
        let odd =
            #"{"eventName":"Lead","eventTime":\#(world.clock.now.unixSeconds - 5),"actionSource":"other","eventId":"odd","userData":{"fn":"mary"}}"#
        let ids = (0..<7).map { "ok\($0)" }
        let response = world.send(
            #"{"events":[\#(ids.prefix(3).map { world.lead($0) }.joined(separator: ",")),\#(odd),\#(ids.suffix(4).map { world.lead($0) }.joined(separator: ","))]}"#
        )
        #expect(response.status == 207)
        let rejected = response.json["rejected"] as? [[String: Any]]
        #expect(rejected?.map { $0["index"] as? Int } == [3])
        #expect(rejected?.first?["code"] as? String == "meta_invalid_event")
        #expect((rejected?.first?["message"] as? String)?.contains("2804050") == true)
        #expect(Set(world.deliveredIds()) == Set(ids))
    }

    @Test func allRejectedIs422AndMalformedIs400() {
        let world = World()
        world.readyTenant()
        #expect(world.send(#"{"events":[{"eventName":"x"}]}"#).status == 422)
        #expect(world.send(#"{"events":[#"#).status == 400)
        #expect(world.send(#"{"events":[]}"#).status == 400)
        #expect(world.send(#"{"events":{},"x":1}"#).status == 400)
        let tooMany = world.send(#"{"events":[\#(Array(repeating: "{}", count: 10_001).joined(separator: ","))]}"#)
        #expect(tooMany.status == 413)
    }

    @Test func dryRunAnswersThePayloadAndSendsNothing() throws {
        let world = World()
        world.readyTenant(testEventCode: "TEST9")
        let response = world.send(world.lead("d1"), query: "?dryRun=1")
        #expect(response.status == 200)
        #expect(response.json["status"] as? String == "dry_run")
        let payloads = try #require(response.json["payloads"] as? [[String: Any]])
        #expect(payloads.count == 1)
        #expect(payloads[0]["test_event_code"] as? String == "TEST9")
        #expect(payloads[0]["partner_agent"] as? String == MetaSettings.defaultPartnerAgent)
        let data = try #require(payloads[0]["data"] as? [[String: Any]])
        #expect((data[0]["user_data"] as? [String: Any])?["em"] as? String == Hex.encode(Crypto.sha256("a@b.co")))
        #expect(world.delivered().isEmpty)
        #expect(!world.transport.paths.contains { $0.hasSuffix("/events") })
        // A copy of an event in the same request is left out, as a real send leaves it out.
        let copies = world.send(world.batch(["d2", "d3", "d2"]), query: "?dryRun=1")
        let sent = try #require((copies.json["payloads"] as? [[String: Any]])?.first?["data"] as? [[String: Any]])
        #expect(sent.map { $0["event_id"] as? String } == ["d2", "d3"])
        #expect(copies.json["duplicates"] as? Int == 1)
        #expect(String(decoding: copies.body, as: UTF8.self).hasPrefix(#"{"datasetIds":["2000101"],"duplicates":1,"payloads":["#))
    }

    @Test func notConnectedAndNoPixelAreClearErrors() {
        let world = World()
        #expect(world.send(world.lead("x")).status == 404)
        world.connectTenant()
        let response = world.send(world.lead("x"))
        #expect(response.status == 409)
        #expect(response.errorCode == "pixel_not_configured")
    }

    @Test func anEventIdDeliveredIsNotSentAgain() {
        let world = World()
        world.readyTenant()
        #expect(world.send(world.lead("same")).json["eventsReceived"] as? Int == 1)
        let again = world.send(world.batch(["same", "same", "new"]))
        #expect(again.status == 200)
        #expect(again.json["duplicates"] as? Int == 2)
        #expect(again.json["eventsReceived"] as? Int == 1)
        #expect(world.deliveredIds() == ["same", "new"])
        // Within Meta's 48-hour window a copy is still a duplicate (47 h later); after it the id
        // may be sent again (49 h).
        world.clock.advance(47 * 3600)
        let late = world.send(world.lead("same"))
        #expect(late.json["duplicates"] as? Int == 1 && late.json["eventsReceived"] as? Int == 0, "\(late.json)")
        world.clock.advance(2 * 3600)
        #expect(world.send(world.lead("same")).json["eventsReceived"] as? Int == 1)
    }

    @Test func anOutageQueuesThenTheDrainDeliversExactlyOnce() throws {
        let world = World()
        world.readyTenant()
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        let response = world.send(world.batch(["q1", "q2", "q3"]))
        #expect(response.status == 202)
        #expect(response.json["status"] as? String == "queued")
        #expect(response.json["queued"] as? Int == 3)
        #expect(world.delivered().isEmpty)
        // The queued events hold no claim: the drain claims and sends each once.
        #expect(try world.store.list(prefix: "meta/outbox/tenant_a/", after: nil, limit: 10).entries.count == 3)
        #expect(try world.store.count(prefix: "meta/sent/tenant_a/") == 0)
        let summary = world.drain()
        #expect(summary.outbox.sent == 3)
        #expect(world.deliveredIds().sorted() == ["q1", "q2", "q3"])
        // The pipeline retries the same request after: duplicates of what was delivered.
        #expect(world.send(world.batch(["q1", "q2", "q3"])).json["duplicates"] as? Int == 3)
        #expect(world.drain().outbox.sent == 0)
        #expect(world.deliveredIds().count == 3)
        let settings = world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings")).json
        let delivery = settings["delivery"] as? [String: Any]
        #expect(delivery?["queued"] as? Int == 0)
        #expect(delivery?["eventsSent"] as? Int == 3)
        #expect((delivery?["matchKeyCoverage"] as? [String: Any])?["em"] as? Double == 1)
    }

    @Test func concurrentDrainsSendEachEventOnce() {
        let world = World()
        world.readyTenant()
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        #expect(world.send(world.batch((0..<40).map { "c\($0)" })).status == 202)
        // Every drain that gets past the lease is held at the outbox listing until all four
        // arrive (at most a second): without the lease, all four would list the same events.
        world.storeOverride = RendezvousStore(base: world.store, at: .list, prefix: "meta/outbox/tenant_a/", parties: 4, waitSeconds: 1)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in _ = world.drain() }
        world.storeOverride = nil
        // Whatever the interleaving, a later drain finishes the job and nothing arrives twice.
        _ = world.drain()
        let ids = world.deliveredIds()
        #expect(ids.count == 40)
        #expect(Set(ids).count == 40)
    }

    /// A copy queued during an outage whose twin was delivered meanwhile (by a pipeline's retry)
    /// is removed by the drain, not sent again. A queued event holds no claim and no state
    /// record: only its outbox entry.
    @Test func theDrainSkipsEventsDeliveredMeanwhile() throws {
        let world = World()
        world.readyTenant()
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        #expect(world.send(world.lead("twin")).status == 202)
        #expect(try world.store.count(prefix: "meta/sent/tenant_a/") == 0)
        #expect(try world.store.count(prefix: "meta/outbox/tenant_a/") == 1)
        // The retry comes once Meta answers: it claims the event and is sent.
        let retry = world.send(world.lead("twin"))
        #expect(retry.status == 200 && retry.json["duplicates"] as? Int == 0)
        #expect(world.deliveredIds() == ["twin"])
        world.clock.advance(3600)
        let summary = world.drain()
        #expect(summary.outbox.sent == 0 && summary.outbox.duplicates == 1)
        #expect(world.deliveredIds() == ["twin"])
        #expect(try world.store.count(prefix: "meta/outbox/tenant_a/") == 0)
    }

    /// An event marked queued by an earlier build (its state record says `queued`) stays a
    /// duplicate for a copy, and the drain still claims and sends it once.
    @Test func aQueuedStateFromAnEarlierBuildIsStillHonoured() throws {
        let world = World()
        world.readyTenant()
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        #expect(world.send(world.lead("old")).status == 202)
        let entry = try #require(try world.store.list(prefix: "meta/outbox/tenant_a/", after: nil, limit: 5).entries.first)
        let dedup = String(entry.key.split(separator: "/").last!)
        try world.store.put(RecordKey.sent("tenant_a", dedup), Array("queued".utf8), ttl: 8 * 86_400)
        #expect(world.send(world.lead("old")).json["duplicates"] as? Int == 1)
        #expect(world.deliveredIds().isEmpty)
        world.clock.advance(3600)
        #expect(world.drain().outbox.sent == 1)
        #expect(world.deliveredIds() == ["old"])
    }

    /// A copy that finds the event claimed by another still sending waits, then is queued (and
    /// the drain sends it unless that other copy got through); a claim whose holder died frees
    /// itself after two minutes.
    @Test func aCopyFindingAClaimWaitsThenQueuesAndADeadClaimExpires() throws {
        let world = World()
        world.readyTenant()
        let event = try #require(
            try? ConversionEvent.normalize(
                try JSONParser.parse(Array(world.lead("held").utf8)),
                tenantId: "tenant_a", now: world.clock.now
            ).get())
        try world.store.put(RecordKey.sent("tenant_a", event.dedupKey), Array("claim".utf8), ttl: 120)
        let started = Date()
        let waited = world.send(world.lead("held"))
        #expect(Date().timeIntervalSince(started) >= 4.5, "the copy did not wait for the claim's holder")
        #expect(waited.status == 202 && waited.json["queued"] as? Int == 1, "\(waited.text)")
        #expect(world.deliveredIds().isEmpty)
        // The holder never settles: its claim runs out, and the next copy or the drain sends it.
        world.clock.advance(121)
        #expect(world.drain().outbox.sent == 1)
        #expect(world.deliveredIds() == ["held"])
        #expect(world.send(world.lead("held")).json["duplicates"] as? Int == 1)
    }

    @Test func aRateLimitQueuesAndBacksOff() {
        let world = World()
        world.readyTenant()
        world.queueFault(.rateLimit, path: "2000101/events", count: 1)
        let response = world.send(world.lead("r1"))
        #expect(response.status == 202)
        // Meta asked for a minute: a drain right away waits.
        let early = world.drain()
        #expect(early.outbox.sent == 0 && early.outbox.waiting == 1)
        world.clock.advance(61)
        #expect(world.drain().outbox.sent == 1)
        #expect(world.deliveredIds() == ["r1"])
    }

    /// Meta's code 100, subcode 33 on the pixel (no longer shared, or gone): the events are not
    /// the problem, so they wait in the outbox without using up their attempts; settings says
    /// the pixel is unavailable and why, Compass is told once, and the first delivery that goes
    /// through makes it available again.
    @Test func aPixelMetaCannotReachKeepsEventsQueuedAndSettingsSaysSo() throws {
        let world = World(environment: [
            "CRON_SECRET": "cron-secret-0123456789abcdef",
            "COMPASS_WEBHOOK_URL": "https://compass.example/meta-notices",
            "COMPASS_WEBHOOK_SECRET": "notice-secret-0123456789abcdef",
        ])
        world.readyTenant()
        world.queueFault(.objectUnavailable, path: "2000101/events", count: 2)
        let response = world.send(world.batch(["u1", "u2"]))
        #expect(response.status == 202 && response.json["queued"] as? Int == 2, "\(response.text)")
        #expect((response.json["rejected"] as? [Any])?.isEmpty == true)
        func settings() -> [String: Any] { world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings")).json }
        #expect(settings()["pixelStatus"] as? String == "unavailable")
        #expect((settings()["pixelStatusReason"] as? String)?.contains("(33)") == true)
        func unavailablePixels() throws -> Double? {
            try MetricsHandler(dependencies: world.dependencies).values()[MetricSeries(MetricCatalog.pixelsUnavailable)]
        }
        #expect(try unavailablePixels() == 1)
        func notices() throws -> [String] {
            try world.store.list(prefix: RecordKey.noticesPrefix, after: nil, limit: 10).entries.compactMap {
                try? JSON.decode(CompassNotice.self, from: $0.value.value).type
            }
        }
        #expect(try notices() == ["integration.pixel_unavailable"])
        // An hour later Meta still cannot reach it: the events stay queued, attempts untouched.
        world.clock.advance(3600)
        let still = world.drain()
        #expect(still.outbox.retried == 2 && still.outbox.dead == 0, "\(still.outbox)")
        let entries = try world.store.list(prefix: RecordKey.outboxPrefix("tenant_a"), after: nil, limit: 10).entries
        #expect(entries.count == 2)
        #expect(try entries.allSatisfy { try JSON.decode(OutboxEntry.self, from: $0.value.value).attempts == 0 })
        #expect(try notices() == ["integration.pixel_unavailable"])
        // Reachable again: delivered, and the pixel is available.
        world.clock.advance(3600)
        #expect(world.drain().outbox.sent == 2)
        #expect(world.deliveredIds().sorted() == ["u1", "u2"])
        #expect(settings()["pixelStatus"] as? String == "available")
        #expect(settings()["pixelStatusReason"] == nil)
        #expect(try unavailablePixels() == 0)
    }

    /// Meta's usage headers on successful deliveries stop the drain before Meta refuses: the
    /// next tenant's events wait for the next run.
    @Test func metasUsageHeadersOnDeliveriesStopTheDrainBeforeMetaRefuses() {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant("ua")
        world.readyTenant("ub")
        world.queueFault(.serverError, path: "2000101/events", count: 2)
        #expect(world.send(world.lead("u-a"), tenant: "ua").status == 202)
        #expect(world.send(world.lead("u-b"), tenant: "ub").status == 202)
        world.transport.decorate.withLock {
            $0 = { request, answer in
                guard request.url.contains("/events?"), answer.status == 200 else { return answer }
                var decorated = answer
                decorated.headers["x-app-usage"] = #"{"call_count":96,"total_cputime":10,"total_time":12}"#
                return decorated
            }
        }
        let first = world.drain()
        #expect(first.outbox.sent == 1 && first.outbox.throttled, "\(first.outbox)")
        world.transport.decorate.withLock { $0 = nil }
        let second = world.drain()
        #expect(second.outbox.sent == 1 && !second.outbox.throttled, "\(second.outbox)")
        #expect(world.deliveredIds().sorted() == ["u-a", "u-b"])
    }

    @Test func anExpiredTokenMarksNeedsReauthAndEventsWait() {
        let world = World()
        world.readyTenant()
        world.queueFault(.tokenExpired, path: "2000101/events", count: 1)
        #expect(world.send(world.lead("t1")).status == 202)
        #expect(world.integration()?.status == .needsReauth)
        #expect(world.send(world.lead("t2")).status == 202)
        #expect(world.drain().outbox.sent == 0)
        // Connecting again brings the integration back; the next drain delivers.
        world.connectTenant()
        #expect(world.integration()?.status == .connected)
        #expect(world.drain().outbox.sent == 2)
        #expect(world.deliveredIds().sorted() == ["t1", "t2"])
    }

    @Test func eventsOutsideMetasWindowAreDeadLetteredAndReplayable() throws {
        let world = World()
        world.readyTenant()
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        let old = world.clock.now.unixSeconds - 6 * 86_400 - 3600
        let body = #"{"events":[\#(world.lead("old1", time: old)),\#(world.lead("new1"))]}"#
        #expect(world.send(body).status == 202)
        world.clock.advance(86_400)
        // The old event left Meta's window; the newer one can still go.
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        let summary = world.drain()
        #expect(summary.outbox.dead == 1)
        #expect(try world.store.list(prefix: "meta/dead/tenant_a/", after: nil, limit: 10).entries.count == 1)
        world.clock.advance(3600)
        #expect(world.drain().outbox.sent == 1)
        #expect(world.deliveredIds() == ["new1"])
        // Replay takes only what is still inside the window.
        let replay = world.run(SendEventHandler.self, world.request("POST", "/api/connect/meta/events/replay"))
        #expect(replay.status == 200)
        #expect(replay.json["expired"] as? Int == 1)
        #expect(replay.json["replayed"] as? Int == 0)
    }

    @Test func replayBringsBackDeadLettersStillInTheWindow() throws {
        let world = World()
        world.readyTenant()
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        #expect(world.send(world.lead("m1")).status == 202)
        // Twenty failed attempts: dead-lettered with max_attempts.
        world.queueFault(.serverError, path: "2000101/events", count: 100)
        for _ in 0..<EventPipeline.maxAttempts {
            world.clock.advance(3601)
            _ = world.drain()
        }
        _ = world.sandbox.handle(.init(method: "DELETE", path: "/sandbox/faults", query: QueryParameters()))
        let dead = try world.store.list(prefix: "meta/dead/tenant_a/", after: nil, limit: 10).entries
        #expect(dead.count == 1)
        #expect(String(decoding: dead[0].value.value, as: UTF8.self).contains("max_attempts"))
        world.clock.set(Date(timeIntervalSince1970: 1_790_000_000 + 3600))
        let replay = world.run(SendEventHandler.self, world.request("POST", "/api/connect/meta/events/replay"))
        #expect(replay.json["replayed"] as? Int == 1)
        #expect((replay.json["drain"] as? [String: Any])?["sent"] as? Int == 1)
        #expect(world.deliveredIds() == ["m1"])
    }

    @Test func aTenantSendsOnlyToItsOwnPixel() {
        let world = World()
        world.readyTenant("tenant_a")
        world.connectTenant("tenant_b")
        #expect(world.send(world.lead("b1"), tenant: "tenant_b").status == 409)
        #expect(world.deliveredIds().isEmpty)
    }
}
