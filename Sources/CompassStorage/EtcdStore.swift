import CompassPlatform
import Synchronization

/// The key-value store on an etcd v3 cluster, through its JSON gateway (`/v3/kv/range`, `put`,
/// `deleterange`, `txn`, `/v3/lease/grant`) and the project's one HTTP client. Versions are
/// `mod_revision`s; create-if-absent and compare-and-swap are transactions; TTLs are leases
/// (no keepalives: processes are short-lived) shared by the records of one process that expire
/// in the same bucket of time (`leaseBucketSeconds`), so a batch of events costs one lease, not
/// one each, and a record may outlive its TTL by up to a bucket. Several endpoints: a
/// refused connection, a timeout or a node without a leader moves on to the next, and the whole
/// call gives up within `deadlineMilliseconds`.
package final class EtcdStore: KeyValueStore, @unchecked Sendable {
    package let endpoints: [String]
    package let namespace: String
    package let transport: any HTTPTransport
    package let credentials: (user: String, password: String)?
    package let deadlineMilliseconds: Int
    package let attemptMilliseconds: Int
    /// Shared by the copies `bounded(byDeadline:)` makes: one preferred node, token and set of
    /// leases per process.
    private let shared: Shared

    private final class Shared: Sendable {
        let state = Mutex(State())
    }

    private struct State {
        var preferred = 0
        var token: String?
        /// Leases granted by this process, by the instant (Unix seconds) they run out.
        var leases: [Int64: String] = [:]
    }

    /// Writes per transaction of a batch: under etcd's default `--max-txn-ops` (128).
    package static let batchOps = 100

    /// Records with a TTL run out at the end of a bucket this long (a twentieth of the TTL, at
    /// least a second, at most a minute), so that records written together share a lease.
    package static func leaseBucketSeconds(ttl: Int) -> Int64 { Int64(max(1, min(60, ttl / 20))) }

    package init(
        endpoints: [String], namespace: String = "", transport: any HTTPTransport,
        credentials: (user: String, password: String)? = nil, deadlineMilliseconds: Int = 9_000, attemptMilliseconds: Int = 2_000
    ) {
        self.endpoints = endpoints
        self.namespace = namespace
        self.transport = transport
        self.credentials = credentials
        self.deadlineMilliseconds = deadlineMilliseconds
        self.attemptMilliseconds = attemptMilliseconds
        self.shared = Shared()
    }

    private init(_ store: EtcdStore, transport: any HTTPTransport) {
        endpoints = store.endpoints
        namespace = store.namespace
        self.transport = transport
        credentials = store.credentials
        deadlineMilliseconds = store.deadlineMilliseconds
        attemptMilliseconds = store.attemptMilliseconds
        shared = store.shared
    }

    package func bounded(byDeadline deadline: Int64) -> any KeyValueStore {
        EtcdStore(self, transport: DeadlineTransport(base: transport, deadline: deadline))
    }

    // MARK: KeyValueStore

    package func get(_ key: String) throws(StoreError) -> Versioned? {
        try StoreKey.validate(key)
        let answer: RangeAnswer = try call("/v3/kv/range", ["key": .string(encode(key))])
        guard let first = answer.kvs?.first else { return nil }
        return try first.versioned()
    }

    @discardableResult
    package func put(_ key: String, _ value: [UInt8], ttl: Int?) throws(StoreError) -> UInt64 {
        try StoreKey.validate(key)
        let answer: PutAnswer = try call("/v3/kv/put", try putRequest(key, value, ttl: ttl))
        return try answer.header.revisionNumber()
    }

    @discardableResult
    package func create(_ key: String, _ value: [UInt8], ttl: Int?) throws(StoreError) -> UInt64 {
        try StoreKey.validate(key)
        let answer = try transaction(
            compare: ["key": .string(encode(key)), "target": "CREATE", "create_revision": "0"],
            success: ["request_put": .object(try putRequest(key, value, ttl: ttl))])
        guard answer.succeeded == true else { throw .alreadyExists }
        return try answer.header.revisionNumber()
    }

    @discardableResult
    package func compareAndSwap(_ key: String, _ value: [UInt8], expected version: UInt64, ttl: Int?) throws(StoreError) -> UInt64 {
        try StoreKey.validate(key)
        let answer = try transaction(
            compare: ["key": .string(encode(key)), "target": "MOD", "mod_revision": .string(String(version))],
            success: ["request_put": .object(try putRequest(key, value, ttl: ttl))])
        guard answer.succeeded == true else { throw .versionMismatch }
        return try answer.header.revisionNumber()
    }

    @discardableResult
    package func delete(_ key: String, ifVersion version: UInt64?) throws(StoreError) -> Bool {
        try StoreKey.validate(key)
        guard let version else {
            let answer: DeleteAnswer = try call("/v3/kv/deleterange", ["key": .string(encode(key))])
            return (answer.deleted.flatMap { UInt64($0) } ?? 0) > 0
        }
        let answer = try transaction(
            compare: ["key": .string(encode(key)), "target": "MOD", "mod_revision": .string(String(version))],
            success: ["request_delete_range": .object(["key": .string(encode(key))])])
        guard answer.succeeded == true else { throw .versionMismatch }
        return true
    }

    package func list(prefix: String, after: String?, limit: Int) throws(StoreError) -> KeyPage {
        try StoreKey.validatePrefix(prefix)
        guard limit > 0 else { return KeyPage(entries: [], cursor: after) }
        let full = namespace + prefix
        var start = Array(full.utf8)
        if let after, Array((namespace + after).utf8).lexicographicallyPrecedes(start) == false {
            start = Array((namespace + after).utf8) + [0]
        }
        let answer: RangeAnswer = try call(
            "/v3/kv/range",
            [
                "key": .string(Base64Bytes.encode(start)),
                "range_end": .string(Base64Bytes.encode(Self.prefixEnd(Array(full.utf8)))),
                "limit": .string(String(limit + 1)),
                "sort_order": "ASCEND", "sort_target": "KEY",
            ])
        var entries: [(key: String, value: Versioned)] = []
        for kv in answer.kvs ?? [] {
            guard let raw = Base64Bytes.decode(kv.key) else { throw .corrupt("etcd key") }
            let key = String(decoding: raw, as: UTF8.self)
            guard key.hasPrefix(namespace) else { continue }
            entries.append((String(key.dropFirst(namespace.count)), try kv.versioned()))
        }
        return KeyPage(upTo: limit, of: entries)
    }

    package func count(prefix: String) throws(StoreError) -> Int {
        try StoreKey.validatePrefix(prefix)
        let full = Array((namespace + prefix).utf8)
        let answer: RangeAnswer = try call(
            "/v3/kv/range",
            [
                "key": .string(Base64Bytes.encode(full)), "range_end": .string(Base64Bytes.encode(Self.prefixEnd(full))),
                "count_only": .bool(true),
            ])
        return Int(answer.count ?? "0") ?? 0
    }

    @discardableResult
    package func deleteAll(prefix: String) throws(StoreError) -> Int {
        try StoreKey.validatePrefix(prefix)
        let full = Array((namespace + prefix).utf8)
        let answer: DeleteAnswer = try call(
            "/v3/kv/deleterange",
            [
                "key": .string(Base64Bytes.encode(full)), "range_end": .string(Base64Bytes.encode(Self.prefixEnd(full))),
            ])
        return Int(answer.deleted ?? "0") ?? 0
    }

    /// etcd deletes a key itself when its lease runs out, so sweeping up to now has nothing to
    /// do. An instant ahead (an operator's `compass-dev sweep --as-of`) deletes the keys whose
    /// lease runs out by then.
    package func sweepExpired(after: String?, limit: Int, asOf: Date) throws(StoreError) -> SweepPage {
        let ahead = Int64(asOf.timeIntervalSinceNow.rounded(.down))
        guard ahead > 0, limit > 0 else { return SweepPage(visited: 0, deleted: 0, cursor: nil) }
        var start = Array(namespace.utf8)
        if let after { start = Array((namespace + after).utf8) + [0] }
        let answer: RangeAnswer = try call(
            "/v3/kv/range",
            [
                "key": .string(Base64Bytes.encode(start)),
                "range_end": .string(Base64Bytes.encode(Self.prefixEnd(Array(namespace.utf8)))),
                "limit": .string(String(limit)), "sort_order": "ASCEND", "sort_target": "KEY", "keys_only": .bool(true),
            ])
        let kvs = answer.kvs ?? []
        var page = SweepPage(visited: kvs.count, deleted: 0, cursor: nil)
        for kv in kvs {
            guard let raw = Base64Bytes.decode(kv.key) else { throw .corrupt("etcd key") }
            let key = String(decoding: raw, as: UTF8.self).dropFirst(namespace.count)
            page.cursor = String(key)
            guard let lease = kv.lease, lease != "0" else { continue }
            let life: LeaseLife = try call("/v3/lease/timetolive", ["ID": .string(lease)])
            guard let ttl = life.ttl.flatMap({ Int64($0) }), ttl <= ahead,
                let version = kv.modRevision.flatMap({ UInt64($0) })
            else { continue }
            do {
                if try delete(String(key), ifVersion: version) { page.deleted += 1 }
            } catch .versionMismatch {
                // Written again meanwhile: no longer the record that was expiring.
            }
        }
        if kvs.count < limit { page.cursor = nil }
        return page
    }

    // MARK: Requests

    private func encode(_ key: String) -> String { Base64Bytes.encode(Array((namespace + key).utf8)) }

    private func putRequest(_ key: String, _ value: [UInt8], ttl: Int?) throws(StoreError) -> [String: JSONValue] {
        var request: [String: JSONValue] = ["key": .string(encode(key)), "value": .string(Base64Bytes.encode(value))]
        if let ttl { request["lease"] = .string(try lease(for: ttl)) }
        return request
    }

    /// A lease that runs out at the end of the bucket holding now + `ttl`: one this process
    /// granted before, or a new one.
    private func lease(for ttl: Int) throws(StoreError) -> String {
        let now = Date().unixSeconds
        let bucket = Self.leaseBucketSeconds(ttl: ttl)
        let end = (now + Int64(max(ttl, 1)) + bucket - 1) / bucket * bucket
        let known = shared.state.withLock { state -> String? in
            state.leases = state.leases.filter { $0.key > now }
            return state.leases[end]
        }
        if let known { return known }
        let lease: LeaseAnswer = try call("/v3/lease/grant", ["TTL": .string(String(max(end - now, 1)))])
        guard let id = lease.id else { throw .unavailable("etcd granted no lease") }
        shared.state.withLock { $0.leases[end] = id }
        return id
    }

    /// Batches of `batchOps` writes, one transaction each: a put is a put, a delete a delete, a
    /// create a nested transaction on the key's create revision (so one existing key fails only
    /// its own write).
    /// A key written twice starts a new transaction (etcd refuses a key twice in one).
    package func write(_ writes: [BatchWrite]) throws(StoreError) -> [UInt64?] {
        for write in writes { try StoreKey.validate(write.key) }
        var versions: [UInt64?] = []
        versions.reserveCapacity(writes.count)
        var start = 0
        while start < writes.count {
            var keys = Set<String>()
            var operations: [JSONValue] = []
            var end = start
            while end < writes.count, operations.count < Self.batchOps, keys.insert(writes[end].key).inserted {
                switch writes[end] {
                case .put(let key, let value, let ttl):
                    operations.append(.object(["request_put": .object(try putRequest(key, value, ttl: ttl))]))
                case .create(let key, let value, let ttl):
                    operations.append(
                        .object([
                            "request_txn": .object([
                                "compare": .array([.object(["key": .string(encode(key)), "target": "CREATE", "create_revision": "0"])]),
                                "success": .array([.object(["request_put": .object(try putRequest(key, value, ttl: ttl))])]),
                            ])
                        ]))
                case .delete(let key):
                    operations.append(.object(["request_delete_range": .object(["key": .string(encode(key))])]))
                }
                end += 1
            }
            let answer: BatchAnswer = try call("/v3/kv/txn", ["success": .array(operations)])
            let revision = try answer.header.revisionNumber()
            let responses = answer.responses ?? []
            for (offset, write) in writes[start..<end].enumerated() {
                if case .create = write {
                    guard offset < responses.count else { throw .unavailable("etcd answered a batch without its responses") }
                    versions.append(responses[offset].responseTxn?.succeeded == true ? revision : nil)
                } else if case .delete = write {
                    versions.append(nil)
                } else {
                    versions.append(revision)
                }
            }
            start = end
        }
        return versions
    }

    private func transaction(compare: [String: JSONValue], success: [String: JSONValue]) throws(StoreError) -> TxnAnswer {
        try call("/v3/kv/txn", ["compare": .array([.object(compare)]), "success": .array([.object(success)])])
    }

    /// `prefix` with its last byte incremented: the end of a prefix range (all keys for "").
    package static func prefixEnd(_ prefix: [UInt8]) -> [UInt8] {
        var end = prefix
        while let last = end.last {
            if last < 0xff {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]
    }

    /// One gateway call, tried on each endpoint in turn until one answers, within the deadline.
    private func call<T: Decodable>(_ path: String, _ body: [String: JSONValue]) throws(StoreError) -> T {
        let payload = JSON.encode(JSONValue.object(body))
        let deadline = monotonicMilliseconds() + Int64(deadlineMilliseconds)
        var lastProblem = "no endpoint answered"
        var reauthenticated = false
        var attempt = 0
        while attempt < endpoints.count * 2 {
            let remaining = Int(deadline - monotonicMilliseconds())
            guard remaining > 50 else { break }
            let index = shared.state.withLock { ($0.preferred + attempt) % endpoints.count }
            attempt += 1
            var headers = [("Content-Type", "application/json")]
            if credentials != nil {
                guard let token = try authenticate(endpoint: endpoints[index], force: false, remaining: remaining) else { continue }
                headers.append(("Authorization", token))
            }
            let request = HTTPRequest(
                method: "POST", url: endpoints[index] + path, headers: headers, body: payload,
                timeoutMilliseconds: min(attemptMilliseconds, remaining), maxResponseBytes: 32 << 20)
            let response: HTTPResponse
            do {
                response = try transport.send(request)
            } catch {
                lastProblem = "\(endpoints[index]): \(error)"
                continue
            }
            if (200..<300).contains(response.status) {
                shared.state.withLock { $0.preferred = index }
                do {
                    return try JSON.decode(T.self, from: response.body)
                } catch {
                    throw .unavailable("etcd answered \(path) in an unexpected shape")
                }
            }
            let failure = try? JSON.decode(GatewayError.self, from: response.body)
            let message = failure?.message ?? failure?.error ?? "HTTP \(response.status)"
            if failure?.code == 16 && credentials != nil && !reauthenticated {
                // The auth token expired: authenticate again once.
                reauthenticated = true
                _ = try authenticate(endpoint: endpoints[index], force: true, remaining: remaining)
                attempt -= 1
                continue
            }
            if message.contains("request is too large") { throw .unavailable("etcd refused a request over its size limit") }
            if message.contains("database space exceeded") { throw .unavailable("etcd database is full") }
            lastProblem = "\(endpoints[index]): \(message)"
            // Unavailable (14), no leader, timeouts: another node may serve.
        }
        throw .unavailable("etcd unavailable: \(lastProblem)")
    }

    private func authenticate(endpoint: String, force: Bool, remaining: Int) throws(StoreError) -> String? {
        if !force, let token = shared.state.withLock({ $0.token }) { return token }
        guard let credentials else { return nil }
        let body = JSON.encode(JSONValue.object(["name": .string(credentials.user), "password": .string(credentials.password)]))
        guard
            let response = try? transport.send(
                HTTPRequest(
                    method: "POST", url: endpoint + "/v3/auth/authenticate",
                    headers: [("Content-Type", "application/json")], body: body,
                    timeoutMilliseconds: min(attemptMilliseconds, remaining)))
        else { return nil }
        guard (200..<300).contains(response.status), let answer = try? JSON.decode(AuthAnswer.self, from: response.body),
            let token = answer.token
        else {
            throw .unavailable("etcd refused the credentials in ETCD_USER/ETCD_PASSWORD")
        }
        shared.state.withLock { $0.token = token }
        return token
    }

    // MARK: Answers (64-bit numbers arrive as strings; zero values are omitted)

    package struct Header: Decodable {
        package var revision: String?
        package func revisionNumber() throws(StoreError) -> UInt64 {
            guard let revision, let number = UInt64(revision) else { throw .unavailable("etcd answered without a revision") }
            return number
        }
    }

    package struct KeyValue: Decodable {
        package var key: String
        package var value: String?
        package var modRevision: String?
        /// The lease the key was written with; absent or "0" for none.
        package var lease: String?
        package enum CodingKeys: String, CodingKey {
            case key, value, lease
            case modRevision = "mod_revision"
        }
        package func versioned() throws(StoreError) -> Versioned {
            guard let revision = modRevision.flatMap({ UInt64($0) }) else { throw .corrupt("etcd key without mod_revision") }
            guard let bytes = Base64Bytes.decode(value ?? "") else { throw .corrupt("etcd value not base64") }
            return Versioned(value: bytes, version: revision)
        }
    }

    package struct RangeAnswer: Decodable {
        package var kvs: [KeyValue]?
        package var count: String?
    }

    package struct PutAnswer: Decodable { var header: Header }
    package struct DeleteAnswer: Decodable { var deleted: String? }
    /// `TTL` is -1 for a lease that has run out already.
    package struct LeaseLife: Decodable {
        var ttl: String?
        enum CodingKeys: String, CodingKey { case ttl = "TTL" }
    }
    package struct TxnAnswer: Decodable {
        package var header: Header
        package var succeeded: Bool?
    }
    package struct LeaseAnswer: Decodable {
        var id: String?
        enum CodingKeys: String, CodingKey { case id = "ID" }
    }
    package struct BatchAnswer: Decodable {
        package struct Response: Decodable {
            package struct Nested: Decodable { var succeeded: Bool? }
            var responseTxn: Nested?
            enum CodingKeys: String, CodingKey { case responseTxn = "response_txn" }
        }
        package var header: Header
        package var responses: [Response]?
    }
    package struct AuthAnswer: Decodable { var token: String? }
    package struct GatewayError: Decodable {
        package var error: String?
        package var message: String?
        package var code: Int?
    }
}

/// Standard base64, as etcd's gateway wants keys and values.
package enum Base64Bytes {
    package static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
    package static func decode(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { Base64.decode($0) }
    }
    /// Base64 text given as its bytes, decoded where they lie (no String, no copy of them made).
    package static func decode(_ text: ArraySlice<UInt8>) -> [UInt8]? { text.withUnsafeBufferPointer { Base64.decode($0) } }
}
