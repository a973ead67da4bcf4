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

@Suite struct TokenRefreshTests {
    @Test func renewsOnlyTokensNearExpiry() throws {
        let world = World()
        world.connectTenant("early")
        world.clock.advance(30 * 86_400)
        world.connectTenant("late")
        world.clock.advance(24 * 86_400)
        let earlyToken = try world.storedToken("early")
        let lateToken = try world.storedToken("late")

        let summary = world.refreshTokens()
        #expect(summary.integrations == 2)
        #expect(summary.renewed == 1)
        #expect(summary.checked == 1)
        #expect(try world.storedToken("early") != earlyToken)
        #expect(try world.storedToken("late") == lateToken)
        let expiry = try #require(world.credential("early")?.expiresAt)
        #expect(abs(expiry.timeIntervalSince(world.clock.now) - 5_184_000) < 5)
        #expect(world.integration("early")?.lastRefresh?.outcome == "renewed")
        #expect(world.integration("late")?.lastRefresh?.outcome == "checked")
        // The renewed token works at Meta; the old one still does too until it expires.
        let graph = GraphClient(
            settings: world.config.meta, app: try world.config.meta.app(), transport: world.transport, logger: world.logs.logger())
        #expect(try graph.debugToken(try world.storedToken("early")).isValid)

        // Right after, nothing is due.
        let again = world.refreshTokens()
        #expect(again.renewed == 0 && again.checked == 0)
        #expect(!world.logs.text.contains(earlyToken))
    }

    @Test func overlappingRunsRenewATokenOnce() {
        let world = World()
        for tenant in ["t1", "t2", "t3"] { world.connectTenant(tenant) }
        world.clock.advance(55 * 86_400)
        let total = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 3) { _ in
            let summary = world.refreshTokens()
            total.withLock { $0 += summary.renewed }
        }
        #expect(total.withLock { $0 } == 3)
        #expect(world.transport.paths.filter { $0.hasSuffix("oauth/access_token") }.count == 3 * 2 + 3)
    }

    @Test func aTokenMetaRefusesTurnsIntoNeedsReauthAndEventsWaitUntilReconnect() throws {
        let world = World(environment: [
            "COMPASS_WEBHOOK_URL": "https://compass.example/hooks/meta", "COMPASS_WEBHOOK_SECRET": "hook-secret-123456",
        ])
        let hooks = Mutex<[HTTPRequest]>([])
        world.transport.intercept.withLock {
            $0 = { request in
                guard request.url.hasPrefix("https://compass.example/") else { return nil }
                let count = hooks.withLock { list in
                    list.append(request)
                    return list.count
                }
                return HTTPResponse(status: count == 1 ? 503 : 204)
            }
        }
        world.readyTenant()
        world.clock.advance(2 * 86_400)
        world.queueFault(.tokenInvalid, path: "debug_token")
        let summary = world.refreshTokens()
        #expect(summary.needsReauth == 1)
        #expect(world.integration()?.status == .needsReauth)
        #expect(world.integration()?.statusReason == "token_invalid")

        // Events wait, they are not sent and not dropped.
        let queued = world.send(world.lead("w1"))
        #expect(queued.status == 202)

        // The notice: refused once by Compass, delivered on the next run, signed.
        var cron = world.drain()
        #expect(cron.notices.pending == 1)
        cron = world.drain()
        #expect(cron.notices.sent == 1)
        let delivered = try #require(hooks.withLock { $0.last })
        let body = try #require(delivered.body)
        #expect(String(decoding: body, as: UTF8.self).contains(#""type":"integration.needs_reauth""#))
        let timestamp = try #require(delivered.headers.first { $0.0 == "X-Compass-Timestamp" }?.1)
        let signature = try #require(delivered.headers.first { $0.0 == "X-Compass-Signature" }?.1)
        #expect(
            signature == "sha256="
                + Hex.encode(Crypto.hmacSHA256(key: Array("hook-secret-123456".utf8), message: Array((timestamp + ".").utf8) + body)))
        #expect(world.drain().notices.sent == 0)
        // Notices go out under one lease: a run that finds it held leaves them to the holder.
        IntegrationLifecycle(dependencies: world.dependencies).enqueueNotice(
            CompassNotice(type: "integration.needs_reauth", tenant: "tenant_a", reason: "again", time: world.clock.now))
        try world.store.create(RecordKey.noticesLease, [], ttl: 600)
        let held = world.drain().notices
        #expect(held.skipped && held.sent == 0)
        try world.store.delete(RecordKey.noticesLease)
        #expect(world.drain().notices.sent == 1)

        // Connecting again restores it, and the waiting event goes out.
        world.connectTenant()
        #expect(world.integration()?.status == .connected)
        #expect(world.drain().outbox.sent == 1)
        #expect(world.deliveredIds() == ["w1"])
    }

    @Test func aRenewalThatFailsForAWhileIsRecordedAndRetried() {
        let world = World()
        world.connectTenant()
        world.clock.advance(56 * 86_400)
        world.queueFault(.serverError, path: "oauth/access_token")
        #expect(world.refreshTokens().failed == 1)
        #expect(world.integration()?.lastRefresh?.outcome == "failed")
        #expect(world.integration()?.status == .connected)
        // Tried again ten minutes later, not on every run in between.
        world.clock.advance(DueIndex.retryDelay - 60)
        #expect(world.refreshTokens().integrations == 0)
        world.clock.advance(60)
        #expect(world.refreshTokens().renewed == 1)
    }

    /// A reconnect that lands while a renewal is in flight keeps its token: the renewal's write
    /// is a compare-and-swap on the credential it read, and the run counts the tenant skipped.
    @Test func aReconnectDuringARenewalKeepsItsToken() throws {
        let world = World()
        world.connectTenant()
        world.clock.advance(55 * 86_400)
        let reconnected = Mutex(false)
        world.transport.intercept.withLock {
            $0 = { request in
                guard request.url.contains("fb_exchange_token"), !reconnected.withLock({ $0 }) else { return nil }
                // The tenant connects again while Meta answers the renewal.
                reconnected.withLock { $0 = true }
                var credential = world.credential()!
                credential.token = CredentialCipher(keys: world.config.platform.credentialKeys!, random: SecureRandom())
                    .seal("EAAreconnected-token", context: IntegrationCredential.sealContext(tenantId: "tenant_a"))
                _ = try? RecordStore(store: world.store).save(credential, at: RecordKey.credential("tenant_a"))
                return nil
            }
        }
        let summary = world.refreshTokens()
        #expect(reconnected.withLock { $0 })
        #expect(summary.renewed == 0 && summary.skipped == 1, "\(summary)")
        #expect(try world.storedToken() == "EAAreconnected-token")
    }

    /// A run takes no new work once its budget is spent (each Graph call here costs ten seconds
    /// of the test's clock) and the next run goes on where it stopped: over the runs every token
    /// is checked once.
    @Test func aRunStopsAtItsBudgetAndTheNextGoesOn() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef", "REFRESH_BUDGET_SECONDS": "50"])
        let tenants = (0..<20).map { "budget\($0)" }
        for tenant in tenants { world.connectTenant(tenant, user: "1000000000\(1000 + tenants.firstIndex(of: tenant)!)") }
        world.clock.advance(2 * 86_400)
        world.transport.intercept.withLock {
            $0 = { request in
                if request.url.contains("debug_token") { world.clock.advance(10) }
                return nil
            }
        }
        var checked = 0
        var runs = 0
        var sawLeft = false
        while checked < 20 && runs < 10 {
            let summary = try RefreshCronHandler(dependencies: world.dependencies).run()
            runs += 1
            if summary.tokens.left > 0 {
                sawLeft = true
                #expect(summary.budgetSpent)
                // What was due and not taken is what is left: the tokens not yet checked.
                #expect(summary.tokens.integrations + summary.tokens.left == 20 - checked, "\(summary.tokens)")
            }
            checked += summary.tokens.checked
        }
        #expect(sawLeft, "the budget never stopped a run")
        #expect(checked == 20, "\(checked) checks over \(runs) runs")
        #expect(
            world.transport.paths.filter { $0.hasSuffix("debug_token") }.count == 20 + 20, "each token checked once (and once at connect)")
    }

    /// META_CONCURRENCY is how many Graph calls refresh-cron has in flight: never more, and as
    /// many as that at once even above the number of cores (the first calls wait for each other
    /// to be in flight together; a run limited to fewer would leave them waiting in vain).
    @Test(arguments: [1, 3, 6])
    func theGraphCallsInFlightAreMetaConcurrency(limit: Int) throws {
        let world = World(environment: ["META_CONCURRENCY": String(limit)])
        for index in 0..<8 { world.connectTenant("c\(index)", user: "1000000000\(2000 + index)") }
        world.clock.advance(2 * 86_400)
        let inFlight = Mutex((now: 0, most: 0, arrived: 0))
        world.transport.intercept.withLock {
            $0 = { request in
                guard request.url.contains("debug_token") else { return nil }
                let arrival = inFlight.withLock { state in
                    state.now += 1
                    state.arrived += 1
                    state.most = max(state.most, state.now)
                    return state.arrived
                }
                let deadline = Date().addingTimeInterval(5)
                while arrival <= limit, inFlight.withLock({ $0.now }) < limit, Date() < deadline { usleep(1_000) }
                inFlight.withLock { $0.now -= 1 }
                return nil
            }
        }
        #expect(world.refreshTokens().checked == 8)
        #expect(inFlight.withLock { $0.most } == limit)
    }

    /// Meta's usage headers on successful answers slow the run down from 75 % and stop it
    /// taking work at 95 %, before Meta refuses; what is left waits for a later run.
    @Test func metaUsageHeadersSlowARunDownThenStopIt() throws {
        let world = World(environment: ["META_CONCURRENCY": "1"])
        for index in 0..<6 { world.connectTenant("u\(index)", user: "1000000000\(4000 + index)") }
        world.clock.advance(2 * 86_400)
        let levels = Mutex([80, 85, 90, 96])
        world.transport.decorate.withLock {
            $0 = { request, answer in
                guard request.url.contains("debug_token") else { return answer }
                var decorated = answer
                let level = levels.withLock { $0.isEmpty ? 99 : $0.removeFirst() }
                if level == 90 {
                    decorated.headers["x-business-use-case-usage"] =
                        #"{"1234":[{"type":"ads_management","call_count":90,"total_cputime":3,"total_time":4,"estimated_time_to_regain_access":0}]}"#
                } else {
                    decorated.headers["x-app-usage"] = #"{"call_count":\#(level),"total_cputime":2,"total_time":3}"#
                }
                return decorated
            }
        }
        var refresher = TokenRefresher(dependencies: world.dependencies)
        let pauses = Mutex<[Double]>([])
        refresher.pause = { seconds in pauses.withLock { $0.append(seconds) } }
        let summary = try refresher.run()
        #expect(summary.checked == 4 && summary.throttled && summary.left == 2, "\(summary)")
        #expect(pauses.withLock { $0 }.map { ($0 * 100).rounded() / 100 } == [0.5, 1.0, 1.5])
        // Meta naming a time to regain access stops the run too.
        #expect(
            GraphUsage.highestPercentage(["x-business-use-case-usage": #"{"1":[{"call_count":5,"estimated_time_to_regain_access":12}]}"#])
                == 100)
        #expect(GraphUsage.highestPercentage(["x-ad-account-usage": #"{"acc_id_util_pct":9.67,"reset_time_duration":0}"#]) == 9.67)
        #expect(GraphUsage.highestPercentage(["x-app-usage": "not json"]) == nil)
    }

    @Test func rotationReencryptsSoTheOldKeyCanGo() throws {
        let world = World()
        world.connectTenant()
        let token = try world.storedToken()
        let oldKey = world.config.platform.credentialKeys!.current.bytes
        let newKey = Crypto.randomBytes(32)
        world.config.platform.credentialKeys = CredentialKeys(current: newKey, previous: oldKey)
        // Every route reads both keys meanwhile.
        #expect(world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings?adAccountId=act_1000001")).status == 200)
        let summary = world.refreshTokens()
        #expect(summary.rotated == 1)
        #expect(world.credential()?.token.keyId == CredentialKeys.keyId(newKey))
        world.config.platform.credentialKeys = CredentialKeys(current: newKey)
        #expect(try world.storedToken() == token)
        #expect(world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings?adAccountId=act_1000001")).status == 200)
        #expect(world.refreshTokens().rotated == 0)
    }

    /// Security review finding 2: a needs_reauth tenant's credential stayed under the old key
    /// while the run said nothing was left to rotate; removing the old key then made its grant
    /// unrevokable at disconnect.
    @Test func rotationCoversCredentialsOfEveryStatus() throws {
        let world = World()
        world.connectTenant("waiting", user: "10000000000077")
        world.connectTenant("live")
        IntegrationLifecycle(dependencies: world.dependencies).markNeedsReauth(tenant: "waiting", reason: "token_invalid")
        #expect(world.integration("waiting")?.status == .needsReauth)
        let oldKey = world.config.platform.credentialKeys!.current.bytes
        let newKey = Crypto.randomBytes(32)
        world.config.platform.credentialKeys = CredentialKeys(current: newKey, previous: oldKey)
        let summary = world.refreshTokens()
        #expect(summary.rotated == 2)
        #expect(summary.underPreviousKey == 0)
        #expect(world.credential("waiting")?.token.keyId == CredentialKeys.keyId(newKey))
        #expect(world.integration("waiting")?.status == .needsReauth)
        world.config.platform.credentialKeys = CredentialKeys(current: newKey)
        let disconnect = world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect", tenant: "waiting"))
        #expect(disconnect.json["revokedAtMeta"] as? Bool == true, "\(disconnect.text)")
    }

    @Test func aCredentialThatCannotBeRotatedIsCounted() throws {
        let world = World()
        world.connectTenant()
        let oldKey = world.config.platform.credentialKeys!.current.bytes
        world.config.platform.credentialKeys = CredentialKeys(current: Crypto.randomBytes(32), previous: oldKey)
        // Another run holds the tenant's lease: this one leaves the credential as it is.
        try world.store.create(RecordKey.refreshLease("tenant_a"), Array("{}".utf8), ttl: 120)
        let summary = world.refreshTokens()
        #expect(summary.rotated == 0)
        #expect(summary.underPreviousKey == 1)
    }
}
