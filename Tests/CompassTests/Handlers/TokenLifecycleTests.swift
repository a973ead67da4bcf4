import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage

extension World {
    func storedToken(_ tenant: String = "tenant_a") throws -> String {
        try CredentialCipher(keys: config.credentialKeys!, random: SecureRandom())
            .open(credential(tenant)!.token, context: IntegrationCredential.sealContext(tenantId: tenant))
    }

    func refreshTokens() -> TokenRefresher.Summary { try! TokenRefresher(dependencies: dependencies).run() }

    /// A signed_request as Meta sends it.
    func signedRequest(user: String, issuedAt: Int64? = nil, secret: String = World.appSecret, algorithm: String = "HMAC-SHA256") -> String
    {
        let payload = Base64URL.encode(
            Array(#"{"algorithm":"\#(algorithm)","issued_at":\#(issuedAt ?? clock.now.unixSeconds),"user_id":"\#(user)"}"#.utf8))
        return Base64URL.encode(Crypto.hmacSHA256(key: Array(secret.utf8), message: Array(payload.utf8))) + "." + payload
    }

    func metaCallback(_ path: String, _ signed: String) -> CGIResponse {
        run(
            MetaWebhooksHandler.self,
            request(
                "POST", path, tenant: nil, headers: ["content-type": "application/x-www-form-urlencoded"],
                body: "signed_request=" + QueryParameters.encode(signed)))
    }
}

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
            config: world.config, app: try world.config.metaApp(), transport: world.transport, logger: world.logs.logger())
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
                credential.token = CredentialCipher(keys: world.config.credentialKeys!, random: SecureRandom())
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
        let oldKey = world.config.credentialKeys!.current.bytes
        let newKey = Crypto.randomBytes(32)
        world.config.credentialKeys = CredentialKeys(current: newKey, previous: oldKey)
        // Every route reads both keys meanwhile.
        #expect(world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings?adAccountId=act_1000001")).status == 200)
        let summary = world.refreshTokens()
        #expect(summary.rotated == 1)
        #expect(world.credential()?.token.keyId == CredentialKeys.keyId(newKey))
        world.config.credentialKeys = CredentialKeys(current: newKey)
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
        let oldKey = world.config.credentialKeys!.current.bytes
        let newKey = Crypto.randomBytes(32)
        world.config.credentialKeys = CredentialKeys(current: newKey, previous: oldKey)
        let summary = world.refreshTokens()
        #expect(summary.rotated == 2)
        #expect(summary.underPreviousKey == 0)
        #expect(world.credential("waiting")?.token.keyId == CredentialKeys.keyId(newKey))
        #expect(world.integration("waiting")?.status == .needsReauth)
        world.config.credentialKeys = CredentialKeys(current: newKey)
        let disconnect = world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect", tenant: "waiting"))
        #expect(disconnect.json["revokedAtMeta"] as? Bool == true, "\(disconnect.text)")
    }

    @Test func aCredentialThatCannotBeRotatedIsCounted() throws {
        let world = World()
        world.connectTenant()
        let oldKey = world.config.credentialKeys!.current.bytes
        world.config.credentialKeys = CredentialKeys(current: Crypto.randomBytes(32), previous: oldKey)
        // Another run holds the tenant's lease: this one leaves the credential as it is.
        try world.store.create(RecordKey.refreshLease("tenant_a"), Array("{}".utf8), ttl: 120)
        let summary = world.refreshTokens()
        #expect(summary.rotated == 0)
        #expect(summary.underPreviousKey == 1)
    }
}

@Suite struct MetaCallbackTests {
    @Test func deauthorizeDisconnectsEveryTenantOfThatUser() {
        let world = World()
        world.connectTenant("a1")
        world.connectTenant("a2")
        world.connectTenant("other", user: "10000000000099")
        let response = world.metaCallback("/api/connect/meta/deauthorize", world.signedRequest(user: SandboxData.defaultUserId))
        #expect(response.status == 200)
        for tenant in ["a1", "a2"] {
            #expect(world.integration(tenant)?.status == .disconnected)
            #expect(world.integration(tenant)?.statusReason == "deauthorized_at_meta")
            #expect(world.credential(tenant) == nil)
        }
        #expect(world.integration("other")?.status == .connected)
        let settings = world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings", tenant: "a1"))
        #expect(settings.json["status"] as? String == "disconnected")
        #expect(world.send(world.lead("x"), tenant: "a1").status == 404)
    }

    @Test func dataDeletionDeletesAndAnswersAStatusURL() throws {
        let world = World()
        world.connectTenant("d1")
        let response = world.metaCallback("/api/connect/meta/data-deletion", world.signedRequest(user: SandboxData.defaultUserId))
        #expect(response.status == 200)
        let code = try #require(response.json["confirmation_code"] as? String)
        #expect(response.json["url"] as? String == "\(World.base)/api/connect/meta/data-deletion?code=\(code)")
        #expect(world.integration("d1") == nil && world.credential("d1") == nil)
        let status = world.run(MetaWebhooksHandler.self, world.request("GET", "/api/connect/meta/data-deletion?code=\(code)", tenant: nil))
        #expect(status.status == 200)
        #expect(status.json["status"] as? String == "completed")
        #expect(status.json["tenants"] as? Int == 1)
        let unknown = world.run(
            MetaWebhooksHandler.self, world.request("GET", "/api/connect/meta/data-deletion?code=00000000000000000000", tenant: nil))
        #expect(unknown.status == 404)
    }

    /// Security review: a signed_request could be replayed within its hour. A replayed data
    /// deletion answers the first answer; a replayed deauthorize changes nothing new.
    @Test func aReplayedSignedRequestAnswersAsTheFirstAndChangesNothing() throws {
        let world = World()
        world.connectTenant("d1")
        let deletion = world.signedRequest(user: SandboxData.defaultUserId)
        let first = world.metaCallback("/api/connect/meta/data-deletion", deletion)
        let again = world.metaCallback("/api/connect/meta/data-deletion", deletion)
        #expect(first.status == 200 && again.status == 200)
        #expect(again.text == first.text)
        #expect(try world.store.count(prefix: "meta/deletion/") == 1)

        let deauthorize = world.signedRequest(user: SandboxData.defaultUserId, issuedAt: world.clock.now.unixSeconds - 1)
        world.connectTenant("d2")
        #expect(world.metaCallback("/api/connect/meta/deauthorize", deauthorize).status == 200)
        #expect(world.integration("d2")?.status == .disconnected)
        // The tenant connects again within the hour; the same request arrives once more.
        world.clock.advance(600)
        world.connectTenant("d2")
        let replayed = world.metaCallback("/api/connect/meta/deauthorize", deauthorize)
        #expect(replayed.status == 200 && replayed.text == #"{"success":true}"#)
        #expect(world.integration("d2")?.status == .connected)
        #expect(world.credential("d2") != nil)
    }

    @Test func refusesBadStaleOrForeignSignatures() {
        let world = World()
        world.connectTenant()
        let path = "/api/connect/meta/deauthorize"
        #expect(world.metaCallback(path, world.signedRequest(user: SandboxData.defaultUserId, secret: "another-apps-secret")).status == 401)
        #expect(
            world.metaCallback(path, world.signedRequest(user: SandboxData.defaultUserId, issuedAt: world.clock.now.unixSeconds - 7200))
                .status == 401)
        #expect(world.metaCallback(path, world.signedRequest(user: SandboxData.defaultUserId, algorithm: "none")).status == 400)
        #expect(world.metaCallback(path, "not.a-signed-request!").status == 400)
        #expect(world.metaCallback(path, "").status == 400)
        let tampered = world.signedRequest(user: "10000000000099").split(separator: ".")
        let forged =
            String(tampered[0]) + "."
            + Base64URL.encode(
                Array(
                    #"{"algorithm":"HMAC-SHA256","issued_at":\#(world.clock.now.unixSeconds),"user_id":"\#(SandboxData.defaultUserId)"}"#
                        .utf8))
        #expect(world.metaCallback(path, forged).status == 401)
        #expect(world.integration()?.status == .connected)
    }
}

/// Facebook Login for Business (issue 15, part 1): the dialog names the configuration instead of
/// scopes; a configuration that gives a system-user token connects without the long-lived
/// exchange, records the client's business, and its token is only ever checked, never renewed.
@Suite struct LoginForBusinessTests {
    static let configId = "1234567890123"

    @Test func theDialogNamesTheConfigurationInsteadOfScopes() throws {
        let world = World(environment: ["META_LOGIN_CONFIG_ID": Self.configId])
        let connect = world.run(ConnectHandler.self, world.request("GET", "/api/connect/meta", cookie: true))
        let location = try #require(connect.header("Location"))
        let query = QueryParameters(parsing: location.split(separator: "?", maxSplits: 1).last.map(String.init) ?? "")
        #expect(query.single("config_id") == Self.configId)
        #expect(query.single("override_default_response_type") == "true")
        #expect(query.single("response_type") == "code")
        #expect(!query.contains("scope"))
        #expect(throws: Config.Error.self) {
            try Config.load(from: world.environment(["META_LOGIN_CONFIG_ID": "config-1"]), workingDirectory: "/")
        }
    }

    @Test func aSystemUserTokenIsNeverExchangedAndOnlyChecked() throws {
        let world = World(environment: ["META_LOGIN_CONFIG_ID": Self.configId])
        #expect(world.connectTenant(approve: "&sandbox_token_type=system_user").hasSuffix("?connected=meta"))
        let exchanges = { world.transport.requests.withLock { $0.filter { $0.url.contains("fb_exchange_token") }.count } }
        #expect(exchanges() == 0)
        let credential = try #require(world.credential())
        #expect(credential.tokenType == "system_user" && credential.expiresAt == nil && credential.dataAccessExpiresAt == nil)
        #expect(credential.metaUserId == SandboxData.systemUserId)
        #expect(world.integration()?.tokenType == "system_user")
        #expect(world.integration()?.clientBusinessId == SandboxData.businessId)
        // The ad accounts are the ones the configuration's grant names, not every listed one.
        #expect(world.integration()?.config.adAccounts.map(\.id) == ["act_1000001", "act_1000002"])
        #expect(!world.transport.paths.contains { $0.hasSuffix("me/adaccounts") })
        let settings = world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings")).json
        #expect(settings["tokenType"] as? String == "system_user")
        #expect(settings["clientBusinessId"] as? String == SandboxData.businessId)
        #expect(settings["tokenExpiresAt"] == nil)
        // Two months on: checked each time it is due, never renewed; events still go through.
        for _ in 0..<60 {
            world.clock.advance(DueIndex.period + DueIndex.jitter + 60)
            let summary = world.refreshTokens()
            #expect(summary.renewed == 0 && summary.failed == 0, "\(summary)")
        }
        #expect(exchanges() == 0)
        #expect(world.integration()?.lastRefresh?.outcome == "checked")
        #expect(
            world.run(
                SettingsHandler.self,
                world.request(
                    "PUT", "/api/connect/meta/settings",
                    body: #"{"adAccountId":"act_1000001","pixelId":"2000101"}"#)
            ).status == 200)
        #expect(world.send(world.lead("bisu-1")).status == 200)
    }

    /// Meta's deauthorize callback and disconnect (with the revoke at Meta) as for a user token.
    @Test func aSystemUserConnectionIsDeauthorizedAndDisconnectedAsAUserOne() throws {
        let world = World(environment: ["META_LOGIN_CONFIG_ID": Self.configId])
        world.connectTenant("bisu_a", approve: "&sandbox_token_type=system_user")
        // Another tenant connected through the same system user: a system user is never
        // treated as a shared grant, so the disconnect revokes it anyway.
        world.connectTenant("bisu_c", approve: "&sandbox_token_type=system_user")
        let disconnect = world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect", tenant: "bisu_a"))
        #expect(disconnect.status == 200 && disconnect.json["revokedAtMeta"] as? Bool == true, "\(disconnect.text)")
        world.connectTenant("bisu_b", approve: "&sandbox_token_type=system_user")
        let deauthorize = world.metaCallback("/api/connect/meta/deauthorize", world.signedRequest(user: SandboxData.systemUserId))
        #expect(deauthorize.status == 200)
        #expect(world.integration("bisu_b")?.status == .disconnected)
        #expect(world.integration("bisu_b")?.statusReason == "deauthorized_at_meta")
    }

    /// The same configuration flow with a user token: exchanged for a long-lived one as before.
    @Test func aUserTokenThroughAConfigurationIsExchangedAsBefore() throws {
        let world = World(environment: ["META_LOGIN_CONFIG_ID": Self.configId])
        #expect(world.connectTenant().hasSuffix("?connected=meta"))
        #expect(world.transport.requests.withLock { $0.filter { $0.url.contains("fb_exchange_token") }.count } == 1)
        #expect(world.credential()?.tokenType == nil && world.credential()?.expiresAt != nil)
        #expect(world.integration()?.tokenType == "user" && world.integration()?.clientBusinessId == nil)
    }
}
