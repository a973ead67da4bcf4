/// A stored value and the version that a compare-and-swap or conditional delete names.
struct Versioned: Sendable, Equatable {
    var value: [UInt8]
    var version: UInt64
}

struct KeyPage: Sendable, Equatable {
    var entries: [(key: String, value: Versioned)]
    /// Pass as `after` to continue; nil when the listing is complete.
    var cursor: String?

    static func == (a: KeyPage, b: KeyPage) -> Bool {
        a.cursor == b.cursor && a.entries.map(\.key) == b.entries.map(\.key)
            && a.entries.map(\.value) == b.entries.map(\.value)
    }
}

enum StoreError: Error, Equatable, Sendable {
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
protocol KeyValueStore: Sendable {
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
    /// How many keys start with `prefix`.
    func count(prefix: String) throws(StoreError) -> Int
}

extension KeyValueStore {
    /// Page by page: memory stays flat however many keys there are.
    func count(prefix: String) throws(StoreError) -> Int {
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
    func put(_ key: String, _ value: [UInt8]) throws(StoreError) -> UInt64 { try put(key, value, ttl: nil) }
    @discardableResult
    func create(_ key: String, _ value: [UInt8]) throws(StoreError) -> UInt64 { try create(key, value, ttl: nil) }
    @discardableResult
    func delete(_ key: String) throws(StoreError) -> Bool { try delete(key, ifVersion: nil) }
}

enum StoreKey {
    static let maxBytes = 512

    static func validate(_ key: String) throws(StoreError) {
        guard !key.isEmpty, key.utf8.count <= maxBytes else { throw .invalidKey("length") }
        for segment in key.split(separator: "/", omittingEmptySubsequences: false) {
            guard isValidSegment(segment) else { throw .invalidKey("segment") }
        }
    }

    static func isValidSegment(_ segment: some StringProtocol) -> Bool {
        segment.consists(of: ASCII.isIdentifier, length: 1...255)
    }

    /// A prefix may end inside a segment or with `/`; it may be empty (everything).
    static func validatePrefix(_ prefix: String) throws(StoreError) {
        guard prefix.utf8.count <= maxBytes else { throw .invalidKey("length") }
        let segments = prefix.split(separator: "/", omittingEmptySubsequences: false)
        for (index, segment) in segments.enumerated() {
            let isLast = index == segments.count - 1
            if isLast && segment.isEmpty { continue }
            guard isValidSegment(segment) else { throw .invalidKey("prefix") }
        }
    }
}
