import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage

/// A store that writes down every operation that reads (which keys, which prefixes), so a test
/// can tell what a run looked at.
final class ReadRecordingStore: ForwardingStore, @unchecked Sendable {
    let base: any KeyValueStore
    private let reads = Mutex<[String]>([])

    init(base: any KeyValueStore) { self.base = base }

    /// `get KEY`, `list PREFIX`, `count PREFIX`, `sweep`, in the order they came.
    var operations: [String] { reads.withLock { $0 } }
    func reset() { reads.withLock { $0 = [] } }
    private func note(_ operation: String) { reads.withLock { $0.append(operation) } }

    func get(_ key: String) throws(StoreError) -> Versioned? {
        note("get " + key)
        return try base.get(key)
    }
    func list(prefix: String, after: String?, limit: Int) throws(StoreError) -> KeyPage {
        note("list " + prefix)
        return try base.list(prefix: prefix, after: after, limit: limit)
    }
    func count(prefix: String) throws(StoreError) -> Int {
        note("count " + prefix)
        return try base.count(prefix: prefix)
    }
    func sweepExpired(after: String?, limit: Int, asOf: Date) throws(StoreError) -> SweepPage {
        note("sweep")
        return try base.sweepExpired(after: after, limit: limit, asOf: asOf)
    }
}

extension World {
    /// `count` seeded tenants (`TenantSeeder`), their tokens registered in this world's sandbox.
    func seed(_ count: Int, dueFraction: Double) throws {
        let seeder = TenantSeeder(
            store: store, sandbox: try FileStore(root: folder.path + "/sandbox", clock: clock),
            cipher: CredentialCipher(keys: config.credentialKeys!, random: SecureRandom()),
            scopes: config.scopes, renewalWindow: config.renewalWindow, now: clock.now)
        #expect(try seeder.seed(count: count, dueFraction: dueFraction) == count)
    }
}

/// The due index (DESIGN section 5) on every backend: entries in time order, only what is due.
@Suite struct DueIndexTests {
    @Test(arguments: StoreConformanceTests.backends)
    func listsWhatIsDueInTimeOrderAndNothingLater(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let store = try make().store
        let index = DueIndex(store: store)
        let now = Date(timeIntervalSince1970: 1_790_000_000)
        // Added out of order, across minutes, some in the future.
        let plan: [(String, TimeInterval)] = [("late", 3600), ("b", -60), ("a", -7200), ("c", -60), ("now", 0), ("soon", 61)]
        for (tenant, offset) in plan { try index.add(tenant, at: now.addingTimeInterval(offset)) }
        let due = try index.due(asOf: now, limit: 10)
        #expect(due.entries.map(\.tenant) == ["a", "b", "c", "now"])
        #expect(!due.more)
        #expect(try index.countDue(asOf: now) == 4)
        // Paged: a limit, and going on after the last key taken.
        let first = try index.due(asOf: now, limit: 3)
        #expect(first.entries.map(\.tenant) == ["a", "b", "c"] && first.more)
        let rest = try index.due(asOf: now, after: first.entries.last?.key, limit: 3)
        #expect(rest.entries.map(\.tenant) == ["now"] && !rest.more)
        // An hour later the late one is due too; the entries of moved tenants are gone.
        index.remove("a", at: now.addingTimeInterval(-7200))
        index.remove("b", at: now.addingTimeInterval(-60), keeping: now.addingTimeInterval(-30))
        #expect(try index.due(asOf: now.addingTimeInterval(3600), limit: 10).entries.map(\.tenant) == ["b", "c", "now", "soon", "late"])
        // Keys sort by time across a change in the number of digits of the minute.
        #expect(
            DueIndex.key("x", at: Date(timeIntervalSince1970: 9_999_999 * 60))
                < DueIndex.key("x", at: Date(timeIntervalSince1970: 10_000_000 * 60)))
        #expect(DueIndex.entry(of: DueIndex.key("t_1", at: now))?.tenant == "t_1")
    }

    /// A key under the index's prefix that is not an entry (written by hand) is removed, not
    /// left to stop the listing.
    @Test(arguments: StoreConformanceTests.backends)
    func aKeyThatIsNotAnEntryIsRemoved(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let store = try make().store
        try store.put("meta/due/junk", [1], ttl: nil)
        try DueIndex(store: store).add("t1", at: Date(timeIntervalSince1970: 1_000))
        #expect(try DueIndex(store: store).due(asOf: Date(timeIntervalSince1970: 2_000), limit: 5).entries.map(\.tenant) == ["t1"])
        #expect(try store.get("meta/due/junk") == nil)
    }

    /// The token job on each backend: connected tenants come due a day after their connect
    /// (checked then), a disconnected tenant leaves no entry, an entry of a tenant that is gone
    /// is dropped without a Graph call, and right after a run nothing is due.
    @Test(arguments: StoreConformanceTests.backends)
    func aRunTakesWhatIsDueOnEveryBackend(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let backend = try make()
        let world = World()
        world.storeOverride = backend.store
        for (index, tenant) in ["d1", "d2", "d3"].enumerated() { world.connectTenant(tenant, user: "1000000000\(3000 + index)") }
        #expect(world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect", tenant: "d3")).status == 200)
        // An entry left behind by a writer that died (of a tenant since gone): dropped when due.
        try DueIndex(store: backend.store).add("ghost", at: world.clock.now.addingTimeInterval(DueIndex.period))
        let refresher = TokenRefresher(dependencies: world.dependencies)
        #expect(try refresher.run().integrations == 0, "nothing is due right after connecting")
        world.clock.advance(DueIndex.period - DueIndex.jitter - 120)
        #expect(try refresher.run().integrations == 0, "nothing is due before the day is nearly over")
        world.clock.advance(2 * DueIndex.jitter + 240)
        let checks = world.transport.paths.filter { $0.hasSuffix("debug_token") }.count
        let summary = try refresher.run()
        #expect(summary.checked == 2 && summary.stale == 1 && summary.integrations == 3, "\(summary)")
        #expect(world.transport.paths.filter { $0.hasSuffix("debug_token") }.count == checks + 2)
        #expect(try refresher.run().integrations == 0)
        // Each connected tenant has exactly one entry, a day or so ahead.
        let entries = try backend.store.list(prefix: DueIndex.prefix, after: nil, limit: 10).entries.map(\.key)
        #expect(entries.compactMap { DueIndex.entry(of: $0)?.tenant }.sorted() == ["d1", "d2"])
    }
}

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
        // The first run of a store sweeps it once (then not for an hour).
        _ = try RefreshCronHandler(dependencies: world.dependencies).run()
        world.clock.advance(60)
        recording.reset()
        let calls = world.transport.requests.withLock { $0.count }
        let summary = try RefreshCronHandler(dependencies: world.dependencies).run()
        let reads = recording.operations
        #expect(summary.tokens.integrations == 0)
        #expect(world.transport.requests.withLock { $0.count } == calls, "an idle run calls Meta")
        #expect(!reads.contains { $0.contains(RecordKey.integrationsPrefix) || $0.contains(RecordKey.credentialsPrefix) }, "\(reads)")
        #expect(!reads.contains("sweep"), "\(reads)")
        #expect(reads.count <= 8, "an idle run made \(reads.count) reads: \(reads)")
    }

    /// A simulated day (the test's clock, 1,440 runs a minute apart) over seeded tenants: every
    /// token due for renewal is renewed once, at the first run; every other token is checked
    /// 24 h +/- 1 h after its last check (once, or twice when its first check fell in the
    /// day's first hour); and every credential or integration
    /// a run reads belongs to a tenant that was due when the run began.
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
    }
}
