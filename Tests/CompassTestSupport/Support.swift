// Built for tests only: Testing and @testable imports exist in debug builds, and a release
// build (scripts/serve, scripts/package-lambda) compiles this module empty.
#if DEBUG
    import Foundation
    import Synchronization
    import Testing

    @testable import CompassDev
    @testable import CompassHandlers
    @testable import CompassHosts
    @testable import CompassMeta
    @testable import CompassPlatform
    @testable import CompassStorage

    package final class TestClock: Clock, @unchecked Sendable {
        private let current: Mutex<Date>
        package init(_ date: Date = Date(timeIntervalSince1970: 1_790_000_000)) { current = Mutex(date) }
        package var now: Date { current.withLock { $0 } }
        package func advance(_ seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
        package func set(_ date: Date) { current.withLock { $0 = date } }
    }

    /// Collects log lines so tests can read them (and search them for secrets).
    package final class LogCapture: Sendable {
        private let lines = Mutex<[String]>([])
        package func logger(_ function: String = "test") -> Logger {
            Logger(function: function, level: .debug) { line in self.lines.withLock { $0.append(line) } }
        }
        package var text: String { lines.withLock { $0.joined(separator: "\n") } }
        package var all: [String] { lines.withLock { $0 } }
    }

    /// A fresh temporary folder, removed when the value is released.
    /// A folder of its own under the temporary directory, removed when released and, for one
    /// that never is (a shared server's, or one a closure keeps), when the test process exits:
    /// a run leaves no `compass-test-*` folder behind (scripts/test checks it).
    package final class TemporaryFolder: Sendable {
        package let path: String
        private static let created = Mutex<[String]>([])
        private static let removedAtExit: Void = {
            atexit {
                for path in TemporaryFolder.created.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
            }
        }()

        package init() {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("compass-test-\(UUID().uuidString)").path
            try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            _ = Self.removedAtExit
            Self.created.withLock { $0.append(path) }
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Routes HTTP requests for the sandbox's base URL to an in-process `GraphSandbox`, recording
    /// every request. `intercept` may answer first (for answers the sandbox would never give).
    package final class SandboxTransport: HTTPTransport, @unchecked Sendable {
        package let sandbox: GraphSandbox
        package let requests = Mutex<[HTTPRequest]>([])
        package let intercept = Mutex<(@Sendable (HTTPRequest) -> HTTPResponse?)?>(nil)
        /// Changes the sandbox's answers on their way back (headers Meta adds, for instance).
        package let decorate = Mutex<(@Sendable (HTTPRequest, HTTPResponse) -> HTTPResponse)?>(nil)

        package init(sandbox: GraphSandbox) { self.sandbox = sandbox }

        package func send(_ request: HTTPRequest) throws(HTTPFailure) -> HTTPResponse {
            requests.withLock { $0.append(request) }
            if let answer = intercept.withLock({ $0 })?(request) { return answer }
            guard request.url.hasPrefix(sandbox.baseURL + "/") else { throw .connect("no route to \(request.url)") }
            let rest = request.url.dropFirst(sandbox.baseURL.count)
            let parts = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            let answer = sandbox.handle(
                .init(
                    method: request.method, path: String(parts[0]),
                    query: QueryParameters(parsing: parts.count > 1 ? parts[1] : ""),
                    body: request.body ?? []))
            return decorate.withLock { $0 }?(request, answer) ?? answer
        }

        package var paths: [String] {
            requests.withLock { $0.map { String($0.url.dropFirst(sandbox.baseURL.count).prefix { $0 != "?" }) } }
        }
    }

    /// A transport that is never reached: for routes that must not call out.
    package struct UnreachableTransport: HTTPTransport {
        package func send(_ request: HTTPRequest) throws(HTTPFailure) -> HTTPResponse { throw .connect("unreachable in this test") }
    }

    /// Everything a handler test needs: config, a product store, a sandboxed Meta, a clock.
    package final class World: @unchecked Sendable {
        package static let appId = "1000000000001"
        package static let appSecret = "sandbox-app-secret-0123456789"
        package static let jwtSecret = "test-jwt-secret-0123456789abcdef0123456789"
        package static let base = "https://compass.example"
        package static let graphBase = "https://graph.sandbox.test"

        package let folder = TemporaryFolder()
        package let clock = TestClock()
        package let logs = LogCapture()
        package let store: FileStore
        package let sandbox: GraphSandbox
        package let transport: SandboxTransport
        package var config: Config! = nil
        /// Handlers use this store instead of `store` when set (a wrapper that injects a race).
        package var storeOverride: (any KeyValueStore)?
        package let credentialsKey = Data(Crypto.randomBytes(32)).base64EncodedString()

        package init(environment extra: [String: String] = [:]) {
            store = try! FileStore(root: folder.path + "/store", clock: clock)
            sandbox = GraphSandbox(
                store: try! FileStore(root: folder.path + "/sandbox", clock: clock),
                appId: Self.appId, appSecret: Self.appSecret, baseURL: Self.graphBase,
                clock: clock, random: SecureRandom())
            transport = SandboxTransport(sandbox: sandbox)
            config = try! Config.load(from: environment(extra), workingDirectory: folder.path)
        }

        package func environment(_ extra: [String: String] = [:]) -> [String: String] {
            var env = [
                "META_APP_ID": Self.appId, "META_APP_SECRET": Self.appSecret, "META_GRAPH_URL": Self.graphBase,
                "META_DIALOG_URL": Self.graphBase, "OAUTH_REDIRECT_BASE_URL": Self.base,
                "COMPASS_JWT_SECRET": Self.jwtSecret, "CREDENTIALS_KEY": credentialsKey,
                "STORE_URL": "file://\(folder.path)/store",
            ]
            env.merge(extra) { _, new in new }
            return env
        }

        package var dependencies: Dependencies {
            Dependencies(
                config: config, store: storeOverride ?? store, http: transport, clock: clock, random: SecureRandom(),
                logger: logs.logger())
        }

        package func token(_ tenant: String, lifetime: Int64 = 3600) -> String {
            SessionVerifier(secret: Array(Self.jwtSecret.utf8)).mint(tenantId: tenant, expiresAt: clock.now.unixSeconds + lifetime)
        }

        package func request(
            _ method: String, _ target: String, tenant: String? = "tenant_a", cookie: Bool = false,
            headers: [String: String] = [:], body: String? = nil
        ) -> CGIRequest {
            let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            var all = headers
            if let tenant {
                if cookie { all["cookie"] = "compass_session=\(token(tenant))" } else { all["authorization"] = "Bearer \(token(tenant))" }
            }
            if body != nil && all["content-type"] == nil { all["content-type"] = "application/json" }
            return CGIRequest(
                method: method, path: String(parts[0]),
                query: QueryParameters(parsing: parts.count > 1 ? parts[1] : ""),
                headers: all, body: Array((body ?? "").utf8))
        }

        package func run<H: Handler>(_ handler: H.Type, _ request: CGIRequest) -> CGIResponse {
            H(dependencies: dependencies).respond(to: request)
        }

        package func queueFault(_ kind: GraphSandbox.Fault.Kind, path: String? = nil, count: Int = 1) {
            let fault = GraphSandbox.Fault(kind: kind, path: path, remaining: count, delayMilliseconds: 10)
            _ = sandbox.handle(.init(method: "POST", path: "/sandbox/faults", query: QueryParameters(), body: JSON.encode(fault)))
        }

        // MARK: Whole flows

        /// connect -> dialog approve -> callback; returns the callback's Location.
        @discardableResult
        package func connectTenant(_ tenant: String = "tenant_a", decline: String? = nil, user: String? = nil, approve extra: String = "")
            -> String
        {
            let connect = run(ConnectHandler.self, request("GET", "/api/connect/meta", tenant: tenant, cookie: true))
            guard let dialog = connect.header("Location") else { return "connect failed: \(connect.status)" }
            var approve = dialog + "&sandbox_action=approve"
            if let decline { approve += "&sandbox_decline=\(decline)" }
            if let user { approve += "&sandbox_user=\(user)" }
            approve += extra
            guard let answer = try? transport.send(HTTPRequest(method: "GET", url: approve)), let back = answer.headers["location"],
                let query = back.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init)
            else {
                Issue.record("the sandbox dialog did not redirect back")
                return "no redirect from the dialog"
            }
            let callback = run(CallbackHandler.self, request("GET", "/api/connect/meta/callback?\(query)", tenant: tenant, cookie: true))
            return callback.header("Location") ?? "no location"
        }

        package func integration(_ tenant: String = "tenant_a") -> Integration? {
            do {
                return try RecordStore(store: store).load(Integration.self, at: RecordKey.integration(tenant))?.0
            } catch {
                Issue.record("the integration record cannot be read: \(error)")
                return nil
            }
        }

        package func credential(_ tenant: String = "tenant_a") -> IntegrationCredential? {
            do {
                return try RecordStore(store: store).load(IntegrationCredential.self, at: RecordKey.credential(tenant))?.0
            } catch {
                Issue.record("the credential record cannot be read: \(error)")
                return nil
            }
        }
    }

    extension CGIResponse {
        package var text: String { String(decoding: body, as: UTF8.self) }
        package var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
        package var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    }

    /// A store that holds every caller of one operation (`count` or `list`) under `prefix` until
    /// `parties` callers have arrived (or `waitSeconds` passed): several requests that all read
    /// before any writes, the race a lock or a lease must prevent, made certain instead of left to
    /// the scheduler.
    package final class RendezvousStore: ForwardingStore, @unchecked Sendable {
        package enum Operation { case count, list }
        package let base: any KeyValueStore
        package let operation: Operation
        package let prefix: String
        package let parties: Int
        package let waitSeconds: Double
        private let arrived = Mutex(0)

        package init(base: any KeyValueStore, at operation: Operation = .count, prefix: String, parties: Int = 2, waitSeconds: Double = 2) {
            self.base = base
            self.operation = operation
            self.prefix = prefix
            self.parties = parties
            self.waitSeconds = waitSeconds
        }

        private func meet(_ operation: Operation, _ prefix: String) {
            guard operation == self.operation, prefix.hasPrefix(self.prefix) else { return }
            arrived.withLock { $0 += 1 }
            let deadline = Date().addingTimeInterval(waitSeconds)
            while arrived.withLock({ $0 }) < parties && Date() < deadline { usleep(1_000) }
        }

        package func count(prefix: String) throws(StoreError) -> Int {
            meet(.count, prefix)
            return try base.count(prefix: prefix)
        }

        package func list(prefix: String, after: String?, limit: Int) throws(StoreError) -> KeyPage {
            meet(.list, prefix)
            return try base.list(prefix: prefix, after: after, limit: limit)
        }
    }

    /// A store that hands every operation to `base`: a test's wrapper implements only the
    /// operations it watches.
    package protocol ForwardingStore: KeyValueStore {
        var base: any KeyValueStore { get }
    }

    extension ForwardingStore {
        package func get(_ key: String) throws(StoreError) -> Versioned? { try base.get(key) }
        package func put(_ key: String, _ value: [UInt8], ttl: Int?) throws(StoreError) -> UInt64 { try base.put(key, value, ttl: ttl) }
        package func create(_ key: String, _ value: [UInt8], ttl: Int?) throws(StoreError) -> UInt64 {
            try base.create(key, value, ttl: ttl)
        }
        package func compareAndSwap(_ key: String, _ value: [UInt8], expected version: UInt64, ttl: Int?) throws(StoreError) -> UInt64 {
            try base.compareAndSwap(key, value, expected: version, ttl: ttl)
        }
        package func delete(_ key: String, ifVersion version: UInt64?) throws(StoreError) -> Bool {
            try base.delete(key, ifVersion: version)
        }
        package func list(prefix: String, after: String?, limit: Int) throws(StoreError) -> KeyPage {
            try base.list(prefix: prefix, after: after, limit: limit)
        }
        package func count(prefix: String) throws(StoreError) -> Int { try base.count(prefix: prefix) }
        package func deleteAll(prefix: String) throws(StoreError) -> Int { try base.deleteAll(prefix: prefix) }
        package func sweepExpired(after: String?, limit: Int, asOf: Date) throws(StoreError) -> SweepPage {
            try base.sweepExpired(after: after, limit: limit, asOf: asOf)
        }
    }
#endif
