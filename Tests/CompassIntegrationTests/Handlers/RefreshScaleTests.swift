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

/// Issue 14: an idle run costs what is due, not what exists.
@Suite struct RefreshScaleTests {
    /// `compass-dev seed-tenants`: connected tenants with their tokens in the sandbox, the
    /// fraction asked for due now, the rest over the coming day; bad arguments are refused.
    @Test func seedTenantsWritesConnectedTenantsAndTheirTokens() throws {
        let folder = TemporaryFolder()
        let key = Data(Crypto.randomBytes(32)).base64EncodedString()
        let environment = ["STORE_URL": "file://\(folder.path)/store", "CREDENTIALS_KEY": key]
        try FileManager.default.createDirectory(atPath: folder.path + "/sandbox", withIntermediateDirectories: true)
        let result = try Executables.runCGI(
            "compass-dev", environment: environment,
            arguments: ["seed-tenants", "50", "--due-fraction", "0.2", "--sandbox-state", folder.path + "/sandbox"])
        #expect(result.status == 0 && result.text == #"{"seeded":50}"# + "\n", "\(result.text) \(result.stderr)")
        let store = try FileStore(root: folder.path + "/store")
        #expect(try store.count(prefix: RecordKey.credentialsPrefix) == 50)
        #expect(try store.count(prefix: RecordKey.integrationsPrefix) == 50)
        #expect(try DueIndex(store: store).countDue(asOf: Date().addingTimeInterval(60)) == 10)
        #expect(try DueIndex(store: store).countDue(asOf: Date().addingTimeInterval(DueIndex.period + 60)) == 50)
        #expect(try FileStore(root: folder.path + "/sandbox").count(prefix: "tokens/") == 50)
        // The pixel's figures come along each token check: no entry of their own.
        #expect(try store.count(prefix: DueIndex.qualityPrefix) == 0)
        // Nothing from before the due index, nothing to sweep: neither is due.
        #expect(try store.get(RecordKey.dueIndexComplete) != nil && store.get(RecordKey.sweepNext) != nil)
        let integration = try #require(try RecordStore(store: store).load(Integration.self, at: RecordKey.integration("seed_7"))?.0)
        #expect(integration.status == .connected && integration.config.pixelId == "2000101")
        for bad in [
            ["seed-tenants"], ["seed-tenants", "x"], ["seed-tenants", "5", "--due-fraction", "2"], ["seed-tenants", "5", "--bogus", "1"],
        ] {
            let refused = try Executables.runCGI("compass-dev", environment: environment, arguments: bad)
            #expect(refused.status == 2 && !refused.stderr.isEmpty, "\(bad)")
        }
    }

    /// The drain reads the outbox index, not the outboxes: a tenant whose queued events are
    /// not due yet costs no read of its outbox, and once its outbox is empty it has no entry.
    @Test func theDrainReadsOnlyOutboxesWithEventsDue() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant("waits")
        world.readyTenant("idle")
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        #expect(world.send(world.lead("o1"), tenant: "waits").status == 202)
        let recording = ReadRecordingStore(base: world.store)
        world.storeOverride = recording
        // Queued with its first retry due now: the next run tries it (Meta still says no).
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        let first = world.drain()
        #expect(first.outbox.tenants == 1 && first.outbox.retried == 1, "\(first.outbox)")
        // Retried a minute later at the earliest: a run before that reads no outbox at all.
        world.clock.advance(30)
        recording.reset()
        let early = world.drain()
        #expect(early.outbox.tenants == 0)
        #expect(
            !recording.operations.contains {
                $0.hasPrefix("list " + RecordKey.outboxRoot) || $0.hasPrefix("count " + RecordKey.outboxRoot)
            },
            "\(recording.operations)")
        world.clock.advance(3600)
        let due = world.drain()
        #expect(due.outbox.tenants == 1 && due.outbox.sent == 1, "\(due.outbox)")
        #expect(world.deliveredIds() == ["o1"])
        #expect(try world.store.list(prefix: DueIndex.outboxPrefix, after: nil, limit: 10).entries.isEmpty)
    }

    /// With many tenants and nothing due, a run lists the due index's first entry, finds it in
    /// the future, and reads no integration or credential: no Graph call, no walk, no sweep.
    @Test func anIdleRunReadsNoIntegrationRecord() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        try world.seed(300, dueFraction: 0)
        let recording = ReadRecordingStore(base: world.store)
        world.storeOverride = recording
        // Seeded as callbacks write (the expiry index and the gauges too), nothing from before:
        // not even the first run walks the integrations or the credentials.
        _ = try RefreshCronHandler(dependencies: world.dependencies).run()
        #expect(
            !recording.operations.contains { $0.contains(RecordKey.integrationsPrefix) || $0.contains(RecordKey.credentialsPrefix) },
            "\(recording.operations)")
        world.clock.advance(60)
        recording.reset()
        let calls = world.transport.requests.withLock { $0.count }
        let summary = try RefreshCronHandler(dependencies: world.dependencies).run()
        let reads = recording.operations
        #expect(summary.tokens.integrations == 0)
        #expect(world.transport.requests.withLock { $0.count } == calls, "an idle run calls Meta")
        #expect(!reads.contains { $0.contains(RecordKey.integrationsPrefix) || $0.contains(RecordKey.credentialsPrefix) }, "\(reads)")
        #expect(!reads.contains("sweep"), "\(reads)")
        // The four due indexes and the markers of three (the quality index has no walk), the
        // sweep's next time, and the metrics ledger's marker, total and recent shards (folding)
        // and the shard its run count goes to: none grows with the tenants.
        #expect(reads.count <= 12, "an idle run made \(reads.count) reads: \(reads)")
    }

    /// A simulated day (the test's clock, 1,440 runs a minute apart) over seeded tenants: every
    /// token due for renewal is renewed once, at the first run; every other token is checked
    /// 24 h +/- 1 h after its last check (once, or twice when its first check fell in the
    /// day's first hour); each pixel's quality figures are fetched along each of those checks
    /// (not along a renewal); and every credential or integration a run reads belongs to a
    /// tenant that was due when the run began.
    @Test func aSimulatedDayChecksEachTokenOnceAndReadsOnlyWhatIsDue() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        let count = 200
        try world.seed(count, dueFraction: 0.1)
        let start = world.clock.now
        var tenantOfToken: [String: String] = [:]
        var lastCheck: [String: Date] = [:]
        for index in 0..<count {
            let tenant = TenantSeeder.tenant(index)
            tenantOfToken[try world.storedToken(tenant)] = tenant
            lastCheck[tenant] = try #require(world.credential(tenant)?.checkedAt)
        }
        // Meta's side: which token was checked or renewed when.
        let calls = Mutex<[(at: Date, kind: String, token: String)]>([])
        world.transport.intercept.withLock {
            $0 = { request in
                let query = QueryParameters(
                    parsing: request.url.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? "")
                if request.url.contains("/debug_token"), let token = query.single("input_token") {
                    calls.withLock { $0.append((world.clock.now, "check", token)) }
                } else if let token = query.single("fb_exchange_token") {
                    calls.withLock { $0.append((world.clock.now, "renew", token)) }
                } else if request.url.contains("/dataset_quality?"), let token = query.single("access_token") {
                    calls.withLock { $0.append((world.clock.now, "quality", token)) }
                }
                return nil
            }
        }
        let recording = ReadRecordingStore(base: world.store)
        world.storeOverride = recording
        for _ in 0..<1440 {
            let due = Set(try DueIndex(store: world.store).due(asOf: world.clock.now, limit: 10_000).entries.map(\.tenant))
                .union(
                    try DueIndex(store: world.store, prefix: DueIndex.qualityPrefix).due(asOf: world.clock.now, limit: 10_000).entries.map(
                        \.tenant))
            recording.reset()
            let summary = try RefreshCronHandler(dependencies: world.dependencies).run()
            #expect(!summary.budgetSpent && summary.tokens.failed == 0, "\(summary.tokens)")
            for read in recording.operations where read.hasPrefix("get ") {
                for prefix in [RecordKey.credentialsPrefix, RecordKey.integrationsPrefix] where read.hasPrefix("get " + prefix) {
                    let tenant = String(read.dropFirst(4 + prefix.count))
                    #expect(due.contains(tenant), "read \(read) at minute \(Int(world.clock.now.timeIntervalSince(start) / 60)), not due")
                }
            }
            world.clock.advance(60)
        }
        // The renewed tokens are the tenants' tokens now.
        for index in 0..<count {
            let tenant = TenantSeeder.tenant(index)
            tenantOfToken[try world.storedToken(tenant)] = tenant
        }
        let byTenant = Dictionary(grouping: calls.withLock { $0 }) { tenantOfToken[$0.token] ?? "unknown" }
        #expect(byTenant["unknown"] == nil, "calls with tokens of no tenant")
        for index in 0..<count {
            let tenant = TenantSeeder.tenant(index)
            let renewals = byTenant[tenant, default: []].filter { $0.kind == "renew" }
            let checks = byTenant[tenant, default: []].filter { $0.kind == "check" }
            if TenantSeeder.isDue(index, fraction: 0.1) {
                #expect(renewals.count == 1 && renewals.first?.at == start, "\(tenant): \(renewals.count) renewals")
                // Its next check is a day after the renewal, give or take the jitter.
                #expect(checks.allSatisfy { $0.at.timeIntervalSince(start) >= DueIndex.period - DueIndex.jitter - 60 }, "\(tenant)")
            } else {
                #expect(renewals.isEmpty, "\(tenant) renewed outside its window")
                // Checked once, or twice when the first check came in the day's first hour.
                #expect(
                    checks.count == 1 || (checks.count == 2 && checks[0].at.timeIntervalSince(start) < 3600),
                    "\(tenant): \(checks.count) checks in the day")
                var previous = try #require(lastCheck[tenant])
                for check in checks {
                    #expect(
                        abs(check.at.timeIntervalSince(previous) - DueIndex.period) <= 3600,
                        "\(tenant) checked \(check.at.timeIntervalSince(previous)) s after its last check")
                    previous = check.at
                }
            }
        }
        #expect(byTenant.values.joined().filter { $0.kind == "renew" }.count == count / 10)
        // The pixel's figures come along each check, with no index entry of their own; a
        // renewal does not wait for them.
        for index in 0..<count {
            let calls = byTenant[TenantSeeder.tenant(index), default: []]
            let quality = calls.filter { $0.kind == "quality" }.map(\.at)
            #expect(quality == calls.filter { $0.kind == "check" }.map(\.at), "\(TenantSeeder.tenant(index))")
            #expect(!quality.isEmpty || TenantSeeder.isDue(index, fraction: 0.1), "\(TenantSeeder.tenant(index))")
        }
        #expect(try world.store.list(prefix: DueIndex.qualityPrefix, after: nil, limit: 1).entries.isEmpty)
    }
}
