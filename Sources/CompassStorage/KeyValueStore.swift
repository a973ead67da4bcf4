import CompassPlatform

/// A stored value and the version that a compare-and-swap or conditional delete names.
package struct Versioned: Sendable, Equatable {
    package var value: [UInt8]
    package var version: UInt64
}

package struct KeyPage: Sendable, Equatable {
    package var entries: [(key: String, value: Versioned)]
    /// Pass as `after` to continue; nil when the listing is complete.
    package var cursor: String?

    package init(entries: [(key: String, value: Versioned)], cursor: String?) {
        self.entries = entries
        self.cursor = cursor
    }

    /// A page of `limit` entries from a listing that read one more than that when it could:
    /// the extra entry tells that the listing goes on, after the page's last key.
    package init(upTo limit: Int, of entries: [(key: String, value: Versioned)]) {
        guard entries.count > limit else {
            self.init(entries: entries, cursor: nil)
            return
        }
        let page = Array(entries.prefix(limit))
        self.init(entries: page, cursor: page.last?.key)
    }

    package static func == (a: KeyPage, b: KeyPage) -> Bool {
        a.cursor == b.cursor && a.entries.map(\.key) == b.entries.map(\.key)
            && a.entries.map(\.value) == b.entries.map(\.value)
    }
}

/// One write of a batch (`KeyValueStore.write`).
package enum BatchWrite: Sendable, Equatable {
    /// Create-if-absent, as `create`.
    case create(String, [UInt8], ttl: Int?)
    /// Unconditional, as `put`.
    case put(String, [UInt8], ttl: Int?)
    /// Unconditional, as `delete`; its place in the answer is nil (no version).
    case delete(String)

    package var key: String {
        switch self {
        case .create(let key, _, _), .put(let key, _, _), .delete(let key): key
        }
    }

    package var isCreate: Bool {
        if case .create = self { true } else { false }
    }
}

package enum StoreError: Error, Equatable, Sendable {
    /// create: the key exists.
    case alreadyExists
    /// compare-and-swap or conditional delete: the key is absent or at another version.
    case versionMismatch
    /// A key outside the allowed alphabet or shape.
    case invalidKey(String)
    /// The backend cannot be reached or refused the operation (disk full, etcd down).
    case unavailable(String)
    /// A stored record that cannot be read back (truncated, wrong format).
    case corrupt(String)
}

/// The one storage abstraction of the product. Keys are `/`-separated segments of
/// `[A-Za-z0-9_-]` (none empty), at most 512 bytes: safe as file names and etcd keys alike. Values are opaque bytes.
/// Expired keys (TTL) are invisible to every read and may be created again.
package protocol KeyValueStore: Sendable {
    func get(_ key: String) throws(StoreError) -> Versioned?
    /// Unconditional write; returns the new version.
    @discardableResult
    func put(_ key: String, _ value: [UInt8], ttl: Int?) throws(StoreError) -> UInt64
    /// Write only if absent (or expired), else `.alreadyExists`.
    @discardableResult
    func create(_ key: String, _ value: [UInt8], ttl: Int?) throws(StoreError) -> UInt64
    /// Write only if the key is at `version`, else `.versionMismatch`.
    @discardableResult
    func compareAndSwap(_ key: String, _ value: [UInt8], expected version: UInt64, ttl: Int?) throws(StoreError) -> UInt64
    /// Returns whether a key was deleted. With `version`, `.versionMismatch` if it is not at it.
    @discardableResult
    func delete(_ key: String, ifVersion version: UInt64?) throws(StoreError) -> Bool
    /// Keys starting with `prefix`, in byte order, strictly after `after`, at most `limit`.
    func list(prefix: String, after: String?, limit: Int) throws(StoreError) -> KeyPage
    /// As `list`, for a walk over many pages: keys written or deleted while the walk goes on
    /// may or may not be seen, and in exchange a page may cost less (the file store reads each
    /// folder once per walk instead of once per page).
    func scan(prefix: String, after: String?, limit: Int) throws(StoreError) -> KeyPage
    /// How many keys start with `prefix`.
    func count(prefix: String) throws(StoreError) -> Int
    /// Deletes every key starting with `prefix` (a whole tenant's events); returns how many.
    @discardableResult
    func deleteAll(prefix: String) throws(StoreError) -> Int
    /// Several writes, each with the meaning it has alone, in as few round trips as the backend
    /// allows (etcd: one transaction per `EtcdStore.batchOps` writes). Returns, per write, the
    /// new version, or nil for a create whose key existed and for a delete. Not atomic as a whole: a failure
    /// part-way leaves the earlier writes done, as the same writes one by one would.
    func write(_ writes: [BatchWrite]) throws(StoreError) -> [UInt64?]
    /// Deletes the records whose time to live has run out by `asOf`, visiting at most `limit`
    /// keys in byte order after `after`. Reads ignore expired records already; this frees
    /// the space they hold. A `cursor` of nil means the whole store was visited.
    func sweepExpired(after: String?, limit: Int, asOf: Date) throws(StoreError) -> SweepPage
    /// The same store, every call of which ends by `deadline` (`monotonicMilliseconds()`), as
    /// a host with a deadline per request needs (Lambda). A local backend has no call to bound.
    func bounded(byDeadline deadline: Int64) -> any KeyValueStore
}

/// One batch of `sweepExpired`.
package struct SweepPage: Sendable, Equatable {
    package var visited: Int
    package var deleted: Int
    /// Pass as `after` to go on; nil when the sweep reached the end of the store.
    package var cursor: String?

    package init(visited: Int, deleted: Int, cursor: String?) {
        self.visited = visited
        self.deleted = deleted
        self.cursor = cursor
    }
}

extension KeyValueStore {
    package func bounded(byDeadline deadline: Int64) -> any KeyValueStore { self }

    package func scan(prefix: String, after: String?, limit: Int) throws(StoreError) -> KeyPage {
        try list(prefix: prefix, after: after, limit: limit)
    }

    /// One write after the other: for backends where a write is not a round trip.
    package func write(_ writes: [BatchWrite]) throws(StoreError) -> [UInt64?] {
        var versions: [UInt64?] = []
        versions.reserveCapacity(writes.count)
        for write in writes {
            switch write {
            case .put(let key, let value, let ttl):
                versions.append(try put(key, value, ttl: ttl))
            case .create(let key, let value, let ttl):
                do {
                    versions.append(try create(key, value, ttl: ttl))
                } catch .alreadyExists {
                    versions.append(nil)
                }
            case .delete(let key):
                _ = try delete(key, ifVersion: nil)
                versions.append(nil)
            }
        }
        return versions
    }

    /// Page by page: memory stays flat however many keys there are.
    package func count(prefix: String) throws(StoreError) -> Int {
        var total = 0
        var cursor: String? = nil
        repeat {
            let page = try list(prefix: prefix, after: cursor, limit: 500)
            total += page.entries.count
            cursor = page.cursor
        } while cursor != nil
        return total
    }

    @discardableResult
    package func put(_ key: String, _ value: [UInt8]) throws(StoreError) -> UInt64 { try put(key, value, ttl: nil) }
    @discardableResult
    package func create(_ key: String, _ value: [UInt8]) throws(StoreError) -> UInt64 { try create(key, value, ttl: nil) }
    @discardableResult
    package func delete(_ key: String) throws(StoreError) -> Bool { try delete(key, ifVersion: nil) }
}

package enum StoreKey {
    package static let maxBytes = 512

    package static func isValidKey(_ key: String) -> Bool { (try? validate(key)) != nil }

    /// Segments of 1 to 255 bytes of `[A-Za-z0-9_-]` between slashes: read byte by byte (every
    /// byte of a valid key is ASCII, where a byte is a Character), in one pass.
    package static func validate(_ key: String) throws(StoreError) {
        guard !key.isEmpty, key.utf8.count <= maxBytes else { throw .invalidKey("length") }
        // From the String's own storage where it has one (a native String always does).
        let valid = key.utf8.withContiguousStorageIfAvailable(isValid) ?? isValid(key.utf8)
        guard valid else { throw .invalidKey("segment") }
    }

    private static func isValid(_ bytes: some Sequence<UInt8>) -> Bool {
        var length = 0
        for byte in bytes {
            if byte == UInt8(ascii: "/") {
                guard length > 0 else { return false }
                length = 0
            } else {
                guard ASCII.isIdentifier(byte), length < 255 else { return false }
                length += 1
            }
        }
        return length > 0
    }

    package static func isValidSegment(_ segment: String) -> Bool { KeySegment.isValid(segment) }
    package static func isValidSegment(_ segment: Substring) -> Bool { KeySegment.isValid(segment) }

    /// A prefix may end inside a segment or with `/`; it may be empty (everything).
    package static func validatePrefix(_ prefix: String) throws(StoreError) {
        guard prefix.utf8.count <= maxBytes else { throw .invalidKey("length") }
        let segments = prefix.split(separator: "/", omittingEmptySubsequences: false)
        for (index, segment) in segments.enumerated() {
            let isLast = index == segments.count - 1
            if isLast && segment.isEmpty { continue }
            guard isValidSegment(segment) else { throw .invalidKey("prefix") }
        }
    }
}

extension StoreError: ResponseError {
    /// A record that cannot be read back needs an operator (500); anything else is the backend
    /// being unreachable or refusing for now (503, worth a retry).
    package var apiError: APIError {
        switch self {
        case .corrupt:
            APIError(500, "store_record_invalid", "A stored record could not be read; an operator has been told.")
        default:
            .storeUnavailable
        }
    }

    package var logEntry: LogEntry? { LogEntry(.error, "store_failed", ["error": .string("\(self)")]) }
}
