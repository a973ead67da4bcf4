import CompassPlatform
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The key-value store in one DynamoDB table, through `DynamoDBClient` (docs/storage.md).
///
/// An item is a record: `pk` (partition key) is the key's first two segments, or its first for a
/// shorter key (`meta/outbox` for `meta/outbox/<tenant>/<id>`); `sk` (sort key) is the whole key,
/// so every prefix of two segments or more (all the product lists) is one ordered `Query` of
/// one partition key; a shallower prefix (operator tools) is a `Scan`. `v` is the value (binary),
/// `ver` the version (`StoreVersion`), `expires` the Unix second a record with a time to live
/// runs out: the table's TTL attribute, which DynamoDB deletes late, so every read and every
/// condition treats an item past it as absent by this process's clock, as the file store does.
/// Create-if-absent, compare-and-swap and conditional deletes are condition expressions; a
/// batch is conditional `PutItem`s and `BatchWriteItem`s, several at once; reads are strongly
/// consistent.
package struct DynamoDBStore: KeyValueStore {
    package let table: String
    package let client: DynamoDBClient
    /// The longest any call takes, retries of throttled calls included.
    package let callTimeoutMilliseconds: Int
    /// Writes per `BatchWriteItem`: DynamoDB's limit.
    package static let batchItems = 25
    private let clock: any Clock
    /// The end (`monotonicMilliseconds()`) every call of this copy keeps to, if any.
    private let deadline: Int64?

    package init(table: String, client: DynamoDBClient, clock: any Clock = SystemClock(), callTimeoutMilliseconds: Int = 9_000) {
        self.init(table: table, client: client, clock: clock, callTimeoutMilliseconds: callTimeoutMilliseconds, deadline: nil)
    }

    private init(table: String, client: DynamoDBClient, clock: any Clock, callTimeoutMilliseconds: Int, deadline: Int64?) {
        self.table = table
        self.client = client
        self.clock = clock
        self.callTimeoutMilliseconds = callTimeoutMilliseconds
        self.deadline = deadline
    }

    package func bounded(byDeadline deadline: Int64) -> any KeyValueStore {
        DynamoDBStore(
            table: table, client: client, clock: clock, callTimeoutMilliseconds: callTimeoutMilliseconds,
            deadline: min(deadline, self.deadline ?? .max))
    }

    // MARK: Keys and items

    /// The partition a key lives in: its first two segments, or its first for a shorter key.
    package static func partition(of key: String) -> String {
        let segments = key.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        return segments.count > 2 ? segments[0] + "/" + segments[1] : String(segments[0])
    }

    /// The one partition every key under `prefix` lives in, or nil when they may span several.
    package static func partition(ofPrefix prefix: String) -> String? {
        prefix.utf8.count(where: { $0 == UInt8(ascii: "/") }) >= 2 ? partition(of: prefix) : nil
    }

    private static func text(_ value: String) -> JSONValue { .object(["S": .string(value)]) }
    private static func number(_ value: some BinaryInteger) -> JSONValue { .object(["N": .string(String(value))]) }

    private static func itemKey(_ key: String) -> JSONValue { .object(["pk": text(partition(of: key)), "sk": text(key)]) }

    private func item(_ key: String, _ value: [UInt8], version: UInt64, ttl: Int?) -> JSONValue {
        var item: [String: JSONValue] = [
            "pk": Self.text(Self.partition(of: key)), "sk": Self.text(key), "v": .object(["B": .string(Base64Bytes.encode(value))]),
            "ver": Self.number(version),
        ]
        if let ttl { item["expires"] = Self.number(clock.now.unixSeconds + Int64(max(ttl, 1))) }
        return .object(item)
    }

    /// An item as a key and its record; nil when it has run out by this process's clock.
    private func record(_ item: JSONValue) throws(StoreError) -> (key: String, value: Versioned)? {
        guard let key = item["sk"]?["S"]?.string, let version = item["ver"]?["N"]?.string.flatMap({ UInt64($0) }),
            let value = Base64Bytes.decode(item["v"]?["B"]?.string ?? "")
        else { throw .corrupt("DynamoDB item without its key, version or value") }
        guard isLive(item) else { return nil }
        return (key, Versioned(value: value, version: version))
    }

    /// Whether an item has not run out by this process's clock.
    private func isLive(_ item: JSONValue) -> Bool {
        guard let expires = item["expires"]?["N"]?.string.flatMap({ Int64($0) }) else { return true }
        return expires > clock.now.unixSeconds
    }

    /// A live item by this process's clock (`:now`). None of the attribute names is one of
    /// DynamoDB's reserved words, so expressions name them as they are.
    private var now: JSONValue { Self.number(clock.now.unixSeconds) }
    private static let live = "(attribute_not_exists(expires) OR expires > :now)"

    // MARK: KeyValueStore

    package func get(_ key: String) throws(StoreError) -> Versioned? {
        try StoreKey.validate(key)
        let answer = try call(
            "GetItem", ["Key": Self.itemKey(key), "ConsistentRead": .bool(true), "ProjectionExpression": "sk, v, ver, expires"])
        guard let item = answer["Item"], item.object?.isEmpty == false else { return nil }
        return try record(item)?.value
    }

    @discardableResult
    package func put(_ key: String, _ value: [UInt8], ttl: Int?) throws(StoreError) -> UInt64 {
        try StoreKey.validate(key)
        let version = StoreVersion.next(after: nil)
        _ = try call("PutItem", ["Item": item(key, value, version: version, ttl: ttl)])
        return version
    }

    @discardableResult
    package func create(_ key: String, _ value: [UInt8], ttl: Int?) throws(StoreError) -> UInt64 {
        try StoreKey.validate(key)
        let version = StoreVersion.next(after: nil)
        _ = try call(
            "PutItem",
            [
                "Item": item(key, value, version: version, ttl: ttl), "ConditionExpression": "attribute_not_exists(sk) OR expires <= :now",
                "ExpressionAttributeValues": .object([":now": now]),
            ], conditionFailure: .alreadyExists)
        return version
    }

    @discardableResult
    package func compareAndSwap(_ key: String, _ value: [UInt8], expected version: UInt64, ttl: Int?) throws(StoreError) -> UInt64 {
        try StoreKey.validate(key)
        let next = StoreVersion.next(after: version)
        _ = try call(
            "PutItem",
            [
                "Item": item(key, value, version: next, ttl: ttl), "ConditionExpression": .string("ver = :ver AND " + Self.live),
                "ExpressionAttributeValues": .object([":now": now, ":ver": Self.number(version)]),
            ], conditionFailure: .versionMismatch)
        return next
    }

    @discardableResult
    package func delete(_ key: String, ifVersion version: UInt64?) throws(StoreError) -> Bool {
        try StoreKey.validate(key)
        guard let version else {
            let answer = try call("DeleteItem", ["Key": Self.itemKey(key), "ReturnValues": "ALL_OLD"])
            guard let old = answer["Attributes"], old.object?.isEmpty == false else { return false }
            return try record(old) != nil
        }
        _ = try call(
            "DeleteItem",
            [
                "Key": Self.itemKey(key), "ConditionExpression": .string("ver = :ver AND " + Self.live),
                "ExpressionAttributeValues": .object([":now": now, ":ver": Self.number(version)]),
            ], conditionFailure: .versionMismatch)
        return true
    }

    package func list(prefix: String, after: String?, limit: Int) throws(StoreError) -> KeyPage {
        try StoreKey.validatePrefix(prefix)
        guard limit > 0 else { return KeyPage(entries: [], cursor: after) }
        var entries: [(key: String, value: Versioned)] = []
        if Self.partition(ofPrefix: prefix) != nil {
            try pages(prefix: prefix, after: after, keysOnly: false, want: limit + 1) { items throws(StoreError) in
                for item in items { if let found = try record(item) { entries.append(found) } }
                return entries.count <= limit
            }
        } else {
            // Across partitions: every match, then byte order.
            try pages(prefix: prefix, after: after, keysOnly: false, want: nil) { items throws(StoreError) in
                for item in items { if let found = try record(item) { entries.append(found) } }
                return true
            }
            entries.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        }
        return KeyPage(upTo: limit, of: Array(entries.prefix(limit + 1)))
    }

    package func count(prefix: String) throws(StoreError) -> Int {
        try StoreKey.validatePrefix(prefix)
        var total = 0
        try pages(prefix: prefix, after: nil, keysOnly: true, want: nil) { items throws(StoreError) in
            total += items.count { isLive($0) }
            return true
        }
        return total
    }

    /// Every item under the prefix goes, expired ones included; the count is of live ones.
    @discardableResult
    package func deleteAll(prefix: String) throws(StoreError) -> Int {
        try StoreKey.validatePrefix(prefix)
        var keys: [String] = []
        var live = 0
        try pages(prefix: prefix, after: nil, keysOnly: true, liveOnly: false, want: nil) { items throws(StoreError) in
            for item in items {
                guard let key = item["sk"]?["S"]?.string else { throw .corrupt("DynamoDB item without its key") }
                keys.append(key)
                if isLive(item) { live += 1 }
            }
            return true
        }
        var start = 0
        while start < keys.count {
            let chunk = keys[start..<min(start + Self.batchItems, keys.count)]
            try batchWrite(chunk.map { .object(["DeleteRequest": .object(["Key": Self.itemKey($0)])]) })
            start += chunk.count
        }
        return live
    }

    /// Writes of distinct keys at a time (a key written twice starts a new round): the puts and
    /// deletes in `BatchWriteItem`s of 25 (no condition needed), each create a `PutItem` on the condition
    /// that the key is absent or expired, so a taken key fails alone (nil), as one by one;
    /// up to `concurrency` calls in flight. Not `TransactWriteItems`: a transaction costs twice
    /// the writes, and one taken key would cancel the others.
    package func write(_ writes: [BatchWrite]) throws(StoreError) -> [UInt64?] {
        for write in writes { try StoreKey.validate(write.key) }
        var versions: [UInt64?] = []
        versions.reserveCapacity(writes.count)
        var start = 0
        while start < writes.count {
            var keys = Set<String>()
            var end = start
            while end < writes.count, end - start < Self.roundWrites, keys.insert(writes[end].key).inserted { end += 1 }
            versions += try writeRound(Array(writes[start..<end]))
            start = end
        }
        return versions
    }

    /// Calls in flight at once for a batch of writes.
    package static let concurrency = 32
    /// Writes of one round of a batch: a key at most once.
    static let roundWrites = 1_000

    private func writeRound(_ writes: [BatchWrite]) throws(StoreError) -> [UInt64?] {
        let versions = writes.map { _ in StoreVersion.next(after: nil) }
        var jobs: [[Int]] = []
        var puts: [Int] = []
        for (index, write) in writes.enumerated() {
            if case .create = write {
                jobs.append([index])
                continue
            }
            puts.append(index)
            if puts.count == Self.batchItems {
                jobs.append(puts)
                puts = []
            }
        }
        if !puts.isEmpty { jobs.append(puts) }
        let taken = Mutex<Set<Int>>([])
        let failure = Mutex<StoreError?>(nil)
        let next = Atomic<Int>(0)
        let store = self
        let work = jobs
        Workers.run(min(Self.concurrency, jobs.count)) { _ in
            while failure.withLock({ $0 == nil }) {
                let job = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard job < work.count else { return }
                do {
                    if try store.perform(work[job], of: writes, versions: versions) == false {
                        _ = taken.withLock { $0.insert(work[job][0]) }
                    }
                } catch let error as StoreError {
                    failure.withLock { $0 = $0 ?? error }
                } catch {
                    failure.withLock { $0 = $0 ?? .unavailable("DynamoDB batch failed") }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        let refused = taken.withLock { $0 }
        return versions.indices.map { index in
            if refused.contains(index) { return nil }
            if case .delete = writes[index] { return nil }
            return versions[index]
        }
    }

    /// One job of a round: a create alone (false when its key was taken), or up to 25 puts and deletes.
    private func perform(_ job: [Int], of writes: [BatchWrite], versions: [UInt64]) throws(StoreError) -> Bool {
        if job.count == 1, case .create(let key, let value, let ttl) = writes[job[0]] {
            do {
                _ = try call(
                    "PutItem",
                    [
                        "Item": item(key, value, version: versions[job[0]], ttl: ttl),
                        "ConditionExpression": "attribute_not_exists(sk) OR expires <= :now",
                        "ExpressionAttributeValues": .object([":now": now]),
                    ], conditionFailure: .alreadyExists)
                return true
            } catch .alreadyExists {
                return false
            }
        }
        try batchWrite(
            job.map { index in
                switch writes[index] {
                case .put(let key, let value, let ttl):
                    .object(["PutRequest": .object(["Item": item(key, value, version: versions[index], ttl: ttl)])])
                case .delete(let key): .object(["DeleteRequest": .object(["Key": Self.itemKey(key)])])
                case .create: .null
                }
            })
        return true
    }

    /// DynamoDB deletes expired items itself, within days; the sweep deletes those expired by
    /// `asOf` now, `limit` items a page in the table's own order (by partition, then key).
    package func sweepExpired(after: String?, limit: Int, asOf: Date) throws(StoreError) -> SweepPage {
        guard limit > 0 else { return SweepPage(visited: 0, deleted: 0, cursor: nil) }
        var body: [String: JSONValue] = [
            "Limit": .int(Int64(limit)), "ConsistentRead": .bool(true), "ProjectionExpression": "sk, ver, expires",
        ]
        if let after { body["ExclusiveStartKey"] = Self.itemKey(after) }
        let answer = try call("Scan", body)
        let items = answer["Items"]?.array ?? []
        var page = SweepPage(visited: items.count, deleted: 0, cursor: answer["LastEvaluatedKey"]?["sk"]?["S"]?.string)
        let cutoff = asOf.unixSeconds
        for item in items {
            guard let key = item["sk"]?["S"]?.string, let expires = item["expires"]?["N"]?.string.flatMap({ Int64($0) }),
                expires <= cutoff, let version = item["ver"]?["N"]?.string.flatMap({ UInt64($0) })
            else { continue }
            do {
                _ = try call(
                    "DeleteItem",
                    [
                        "Key": Self.itemKey(key), "ConditionExpression": "ver = :ver",
                        "ExpressionAttributeValues": .object([":ver": Self.number(version)]),
                    ], conditionFailure: .versionMismatch)
                page.deleted += 1
            } catch .versionMismatch {
                // Written again meanwhile: no longer the record that was expiring.
            }
        }
        return page
    }

    // MARK: The table

    /// Creates the table when it is missing (on-demand billing, `pk` and `sk` as its key, TTL on
    /// `expires`) and waits until it is active; returns whether it created it. For local
    /// servers and deployments without the SAM template, which creates it itself.
    package func createTableIfMissing(waitMilliseconds: Int = 120_000) throws(StoreError) -> Bool {
        let keys: [JSONValue] = [
            .object(["AttributeName": "pk", "KeyType": "HASH"]), .object(["AttributeName": "sk", "KeyType": "RANGE"]),
        ]
        let attributes: [JSONValue] = [
            .object(["AttributeName": "pk", "AttributeType": "S"]), .object(["AttributeName": "sk", "AttributeType": "S"]),
        ]
        if try tableStatus() != nil { return false }
        do {
            _ = try call(
                "CreateTable", ["BillingMode": "PAY_PER_REQUEST", "KeySchema": .array(keys), "AttributeDefinitions": .array(attributes)])
        } catch .unavailable(let reason) where reason.contains("ResourceInUseException") {
            // Created by another process meanwhile.
        }
        let end = monotonicMilliseconds() + Int64(waitMilliseconds)
        while try tableStatus() != "ACTIVE" {
            guard monotonicMilliseconds() < end else { throw .unavailable("DynamoDB table \(table) did not become active") }
            usleep(200_000)
        }
        _ = try call("UpdateTimeToLive", ["TimeToLiveSpecification": .object(["Enabled": .bool(true), "AttributeName": "expires"])])
        return true
    }

    /// The table's status (`CREATING`, `ACTIVE`, ...), nil when there is no such table.
    private func tableStatus() throws(StoreError) -> String? {
        do {
            return try client.call("DescribeTable", .object(["TableName": .string(table)]), deadline: callDeadline)["Table"]?[
                "TableStatus"]?.string ?? "UNKNOWN"
        } catch .tableNotFound {
            return nil
        } catch {
            throw storeError(error, conditionFailure: .unavailable("DynamoDB refused DescribeTable"))
        }
    }

    // MARK: Calls

    /// One operation on the table, bounded by the call's time and the copy's deadline; a failed
    /// condition is `conditionFailure`.
    private func call(
        _ operation: String, _ body: [String: JSONValue], conditionFailure: StoreError = .unavailable("DynamoDB refused a condition")
    ) throws(StoreError) -> JSONValue {
        var body = body
        body["TableName"] = .string(table)
        do {
            return try client.call(operation, .object(body), deadline: callDeadline)
        } catch {
            throw storeError(error, conditionFailure: conditionFailure)
        }
    }

    private var callDeadline: Int64 { min(monotonicMilliseconds() + Int64(callTimeoutMilliseconds), deadline ?? .max) }

    private func storeError(_ failure: DynamoDBClient.Failure, conditionFailure: StoreError) -> StoreError {
        switch failure {
        case .conditionFailed: conditionFailure
        case .tableNotFound:
            .unavailable("DynamoDB table \(table) does not exist: deploy the template or run compass-dev migrate")
        case .unavailable(let reason): .unavailable(reason)
        case .refused(let type): .unavailable("DynamoDB refused the call (\(type))")
        }
    }

    /// The items under `prefix` after `after`, a page at a time as DynamoDB answers them:
    /// one partition's `Query` in key order when the prefix names one, else a `Scan`. `visit`
    /// returns false to stop; `want` caps each `Query` page at what is still wanted.
    private func pages(
        prefix: String, after: String?, keysOnly: Bool, liveOnly: Bool = true, want: Int?,
        _ visit: ([JSONValue]) throws(StoreError) -> Bool
    ) throws(StoreError) {
        var values: [String: JSONValue] = [:]
        var filters: [String] = []
        if liveOnly {
            filters.append(Self.live)
            values[":now"] = now
        }
        var body: [String: JSONValue] = [
            "ConsistentRead": .bool(true), "ProjectionExpression": keysOnly ? "sk, expires" : "sk, v, ver, expires",
        ]
        let operation: String
        if let partition = Self.partition(ofPrefix: prefix) {
            // Keys are [A-Za-z0-9_/-]: every key under the prefix sorts before prefix + "~", and
            // none between a key and that key + "\u{1}".
            var low = prefix
            if let after, prefix.utf8.lexicographicallyPrecedes((after + "\u{1}").utf8) { low = after + "\u{1}" }
            let high = prefix + "~"
            guard !high.utf8.lexicographicallyPrecedes(low.utf8) else { return }
            operation = "Query"
            body["KeyConditionExpression"] = "pk = :pk AND sk BETWEEN :low AND :high"
            values[":pk"] = Self.text(partition)
            values[":low"] = Self.text(low)
            values[":high"] = Self.text(high)
        } else {
            operation = "Scan"
            if !prefix.isEmpty {
                filters.append("begins_with(sk, :prefix)")
                values[":prefix"] = Self.text(prefix)
            }
            if let after {
                filters.append("sk > :after")
                values[":after"] = Self.text(after)
            }
        }
        if !filters.isEmpty { body["FilterExpression"] = .string(filters.joined(separator: " AND ")) }
        if !values.isEmpty { body["ExpressionAttributeValues"] = .object(values) }
        var seen = 0
        while true {
            if let want, operation == "Query" { body["Limit"] = .int(Int64(max(want - seen, 1))) }
            let answer = try call(operation, body)
            let items = answer["Items"]?.array ?? []
            seen += items.count
            guard try visit(items), let next = answer["LastEvaluatedKey"], next.object?.isEmpty == false else { return }
            body["ExclusiveStartKey"] = next
        }
    }

    /// Unconditional puts and deletes, `BatchWriteItem` with what it left unprocessed sent again.
    private func batchWrite(_ requests: [JSONValue]) throws(StoreError) {
        var requests: JSONValue = .array(requests)
        var pause: UInt32 = 20_000
        while requests.array?.isEmpty == false {
            let answer: JSONValue
            do {
                answer = try client.call("BatchWriteItem", .object(["RequestItems": .object([table: requests])]), deadline: callDeadline)
            } catch {
                throw storeError(error, conditionFailure: .unavailable("DynamoDB refused a batch"))
            }
            requests = answer["UnprocessedItems"]?[table] ?? .array([])
            if requests.array?.isEmpty == false {
                guard monotonicMilliseconds() + Int64(pause / 1000) < callDeadline else {
                    throw .unavailable("DynamoDB left writes unprocessed past the call's time")
                }
                usleep(pause)
                pause = min(pause * 2, 500_000)
            }
        }
    }
}
