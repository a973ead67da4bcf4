import CompassPlatform
import PQBridge
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The key-value store in PostgreSQL, through libpq (loaded on first use). One table in a schema
/// of its own (`COMPASS_PG_SCHEMA`, `compass_meta` by default): keys in byte order (`COLLATE
/// "C"`, so a prefix is an index range), values as bytes, versions from one sequence, expiry as a
/// timestamp compared with this process's clock, as the file store does. One connection per
/// process, opened by the first call (a handler that never touches the store never connects),
/// kept, and opened again after a failure; calls on it take turns.
///
/// Every call, connecting included, ends within `callTimeoutMilliseconds` (and by the deadline of
/// a `bounded(byDeadline:)` copy), counted from the call's start: libpq is driven without
/// blocking and given up when the time runs out, however the server or the network fails (a
/// host name is resolved by libpq before it connects, outside that bound: `hostaddr=` avoids
/// it). A call whose time ran out while it waited its turn sends nothing. A statement given up
/// closes the connection; the server cancels it when it notices (within a second on PostgreSQL
/// 14 and later) or at its `statement_timeout`, the same as the call's. A failure is
/// `.unavailable`, never a partial write (each write is one statement, a batch one transaction).
/// A read on a kept connection that turns out broken (the server restarted since) is tried once
/// more on a new one; a write is not, since it may have been done before the answer was lost.
package final class PostgresStore: KeyValueStore, @unchecked Sendable {
    package let schema: String
    package let callTimeoutMilliseconds: Int
    private let url: String
    private let clock: any Clock
    /// The end (`monotonicMilliseconds()`) every call of this copy keeps to, if any.
    private let deadline: Int64?
    /// Shared by the copies `bounded(byDeadline:)` makes: one connection per process.
    private let connection: Shared

    private final class Shared: Sendable {
        let link = Mutex<Link?>(nil)
    }

    /// An open libpq connection, finished when dropped.
    private final class Link: @unchecked Sendable {
        let handle: UnsafeMutableRawPointer
        /// Set when a statement was given up or the connection failed: it must not be used again.
        var broken = false
        /// The SQLSTATE of the last statement the server refused ("" if none).
        var lastState = ""
        init(_ handle: UnsafeMutableRawPointer) { self.handle = handle }
        deinit { compass_pq_finish(handle) }
    }

    /// What of the URL must never reach a message: libpq's errors quote the password, or the whole
    /// URI, when they cannot parse it (a `%` or a `[` in the password is enough).
    private var secrets: [String] { Self.secrets(in: url) }

    /// The URL itself, its user-info part, and the password as written and percent-decoded, and
    /// each `password=` value of its query: longest first, so that a part is not left behind.
    static func secrets(in url: String) -> [String] {
        var found = [url]
        let rest = url.split(separator: "://", maxSplits: 1).dropFirst().first.map(String.init) ?? url
        if let at = rest.lastIndex(of: "@") {
            let userInfo = String(rest[..<at])
            found.append(userInfo)
            if let colon = userInfo.firstIndex(of: ":") {
                let password = String(userInfo[userInfo.index(after: colon)...])
                found.append(password)
                found.append(QueryParameters.decodePath(password))
            }
        }
        for part in url.split(whereSeparator: { "?&".contains($0) }) where part.hasPrefix("password=") {
            let value = String(part.dropFirst("password=".count))
            found.append(value)
            found.append(QueryParameters.decodePath(value))
        }
        return found.filter { !$0.isEmpty }.sorted { $0.count > $1.count }
    }

    /// `text` with every secret of the URL, and any `password=...` libpq quotes, masked.
    static func masked(_ text: String, secrets: [String]) -> String {
        var text = text
        for secret in secrets { text = text.replacing(secret, with: "[redacted]") }
        var out = ""
        var rest = Substring(text)
        while let range = rest.firstRange(of: "password=") {
            out += rest[..<range.upperBound] + "[redacted]"
            rest = rest[range.upperBound...].drop { !$0.isWhitespace && $0 != "&" && $0 != "\"" && $0 != "'" }
        }
        return out + rest
    }

    /// A connection to another machine without TLS (libpq's default `sslmode=prefer` falls back
    /// to plain text when the server offers no TLS): worth a warning at start. A Unix socket's
    /// folder or a loopback address is this machine.
    static func warnsOfPlainText(host: String, encrypted: Bool) -> Bool {
        guard !encrypted, !host.isEmpty, !host.hasPrefix("/") else { return false }
        return host != "localhost" && !host.hasPrefix("127.") && host != "::1"
    }

    /// The schema's version this build writes; `migrate` brings an older one up to it.
    package static let schemaVersion = 1

    package init(url: String, schema: String = "compass_meta", clock: any Clock = SystemClock(), callTimeoutMilliseconds: Int = 9_000) {
        self.url = url
        self.schema = schema
        self.clock = clock
        self.callTimeoutMilliseconds = callTimeoutMilliseconds
        self.deadline = nil
        self.connection = Shared()
    }

    private init(_ store: PostgresStore, deadline: Int64) {
        url = store.url
        schema = store.schema
        clock = store.clock
        callTimeoutMilliseconds = store.callTimeoutMilliseconds
        self.deadline = min(deadline, store.deadline ?? .max)
        connection = store.connection
    }

    package func bounded(byDeadline deadline: Int64) -> any KeyValueStore { PostgresStore(self, deadline: deadline) }

    private var table: String { "\(schema).records" }
    private var now: String { String(clock.now.timeIntervalSince1970) }
    /// The condition of a record that has not expired by the instant in parameter `now`.
    private func live(_ now: String) -> String { "(expires_at IS NULL OR expires_at > \(expiry(now)))" }

    // MARK: KeyValueStore

    package func get(_ key: String) throws(StoreError) -> Versioned? {
        try StoreKey.validate(key)
        let rows = try query(
            idempotent: true, "SELECT value, version FROM \(table) WHERE key = $1 AND \(live("$2"))", [.text(key), .text(now)])
        return try rows.first.map { row throws(StoreError) in Versioned(value: row[0] ?? [], version: try Self.bigint(row[1], key)) }
    }

    @discardableResult
    package func put(_ key: String, _ value: [UInt8], ttl: Int?) throws(StoreError) -> UInt64 {
        try StoreKey.validate(key)
        let rows = try query(putSQL, putParameters(key, value, ttl))
        return try Self.bigint(rows.first?[0], key)
    }

    @discardableResult
    package func create(_ key: String, _ value: [UInt8], ttl: Int?) throws(StoreError) -> UInt64 {
        try StoreKey.validate(key)
        guard let row = try query(createSQL, createParameters(key, value, ttl)).first else { throw .alreadyExists }
        return try Self.bigint(row[0], key)
    }

    /// The writes in one transaction (one commit for the batch): all of them, or on a failure
    /// none, which is one of the outcomes the same writes one by one could have.
    package func write(_ writes: [BatchWrite]) throws(StoreError) -> [UInt64?] {
        for write in writes { try StoreKey.validate(write.key) }
        guard !writes.isEmpty else { return [] }
        return try withConnection(idempotent: false) { link, end -> Result<[UInt64?], StoreError> in
            if case .failure(let error) = run(link, "BEGIN", [], end) { return .failure(error) }
            var versions: [UInt64?] = []
            versions.reserveCapacity(writes.count)
            for write in writes {
                let result: Result<[[[UInt8]?]], StoreError>
                switch write {
                case .put(let key, let value, let ttl): result = run(link, putSQL, putParameters(key, value, ttl), end)
                case .create(let key, let value, let ttl): result = run(link, createSQL, createParameters(key, value, ttl), end)
                case .delete(let key): result = run(link, "DELETE FROM \(table) WHERE key = $1", [.text(key)], end)
                }
                switch result {
                case .success(let rows):
                    if case .delete = write {
                        versions.append(nil)
                        continue
                    }
                    guard let row = rows.first else {
                        if case .create = write {
                            versions.append(nil)
                            continue
                        }
                        rollBack(link, end)
                        return .failure(.unavailable("PostgreSQL answered a write without its version"))
                    }
                    do throws(StoreError) {
                        versions.append(try Self.bigint(row[0], write.key))
                    } catch {
                        rollBack(link, end)
                        return .failure(error)
                    }
                case .failure(let error):
                    rollBack(link, end)
                    return .failure(error)
                }
            }
            // A COMMIT not sent (the time ran out) or not answered leaves the transaction open:
            // that connection must not serve another call (`withConnection` checks it is idle).
            let committed = run(link, "COMMIT", [], end)
            if case .failure = committed { rollBack(link, end) }
            return committed.map { _ in versions }
        }
    }

    /// Ends a failed batch's transaction; a connection that cannot is not used again.
    private func rollBack(_ link: Link, _ end: Int64) {
        if case .failure = run(link, "ROLLBACK", [], end) { link.broken = true }
    }

    private var putSQL: String {
        """
        INSERT INTO \(table) (key, value, version, expires_at) VALUES ($1, $2, nextval('\(schema).versions'), \(expiry("$3")))
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version, expires_at = EXCLUDED.expires_at
        RETURNING version
        """
    }

    private func putParameters(_ key: String, _ value: [UInt8], _ ttl: Int?) -> [Parameter] { [.text(key), .bytes(value), expiresAt(ttl)] }

    /// An expired record does not count: it is replaced as if absent. No row back: the key exists.
    private var createSQL: String {
        """
        INSERT INTO \(table) AS r (key, value, version, expires_at) VALUES ($1, $2, nextval('\(schema).versions'), \(expiry("$3")))
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version, expires_at = EXCLUDED.expires_at
        WHERE r.expires_at IS NOT NULL AND r.expires_at <= \(expiry("$4"))
        RETURNING version
        """
    }

    private func createParameters(_ key: String, _ value: [UInt8], _ ttl: Int?) -> [Parameter] {
        [.text(key), .bytes(value), expiresAt(ttl), .text(now)]
    }

    @discardableResult
    package func compareAndSwap(_ key: String, _ value: [UInt8], expected version: UInt64, ttl: Int?) throws(StoreError) -> UInt64 {
        try StoreKey.validate(key)
        let rows = try query(
            """
            UPDATE \(table) SET value = $2, version = nextval('\(schema).versions'), expires_at = \(expiry("$3"))
            WHERE key = $1 AND version = $4::bigint AND \(live("$5"))
            RETURNING version
            """, [.text(key), .bytes(value), expiresAt(ttl), .text(String(version)), .text(now)])
        guard let row = rows.first else { throw .versionMismatch }
        return try Self.bigint(row[0], key)
    }

    @discardableResult
    package func delete(_ key: String, ifVersion version: UInt64?) throws(StoreError) -> Bool {
        try StoreKey.validate(key)
        if let version {
            let rows = try query(
                "DELETE FROM \(table) WHERE key = $1 AND version = $2::bigint AND \(live("$3")) RETURNING 1",
                [.text(key), .text(String(version)), .text(now)])
            guard !rows.isEmpty else { throw .versionMismatch }
            return true
        }
        // An expired record goes too, but was not there to delete.
        let rows = try query("DELETE FROM \(table) WHERE key = $1 RETURNING \(live("$2"))", [.text(key), .text(now)])
        return rows.first?[0] == [1]
    }

    package func list(prefix: String, after: String?, limit: Int) throws(StoreError) -> KeyPage {
        try StoreKey.validatePrefix(prefix)
        guard limit > 0 else { return KeyPage(entries: [], cursor: nil) }
        let rows = try query(
            idempotent: true,
            """
            SELECT key, value, version FROM \(table)
            WHERE key >= $1 AND starts_with(key, $1) AND key > $2 AND \(live("$3"))
            ORDER BY key LIMIT $4::bigint
            """, [.text(prefix), .text(after ?? ""), .text(now), .text(String(limit + 1))])
        var entries: [(key: String, value: Versioned)] = []
        entries.reserveCapacity(rows.count)
        for row in rows {
            let key = String(decoding: row[0] ?? [], as: UTF8.self)
            entries.append((key, Versioned(value: row[1] ?? [], version: try Self.bigint(row[2], key))))
        }
        return KeyPage(upTo: limit, of: entries)
    }

    package func count(prefix: String) throws(StoreError) -> Int {
        try StoreKey.validatePrefix(prefix)
        let rows = try query(
            idempotent: true, "SELECT count(*) FROM \(table) WHERE key >= $1 AND starts_with(key, $1) AND \(live("$2"))",
            [.text(prefix), .text(now)])
        return Int(try Self.bigint(rows.first?[0], prefix))
    }

    @discardableResult
    package func deleteAll(prefix: String) throws(StoreError) -> Int {
        try StoreKey.validatePrefix(prefix)
        let rows = try query(
            """
            WITH gone AS (DELETE FROM \(table) WHERE key >= $1 AND starts_with(key, $1) RETURNING expires_at)
            SELECT count(*) FROM gone WHERE \(live("$2"))
            """, [.text(prefix), .text(now)])
        return Int(try Self.bigint(rows.first?[0], prefix))
    }

    package func sweepExpired(after: String?, limit: Int, asOf: Date) throws(StoreError) -> SweepPage {
        guard limit > 0 else { return SweepPage(visited: 0, deleted: 0, cursor: after) }
        let rows = try query(
            """
            WITH page AS (SELECT key, expires_at FROM \(table) WHERE key > $1 ORDER BY key LIMIT $2::bigint),
                 gone AS (DELETE FROM \(table) r USING page p WHERE r.key = p.key AND r.expires_at <= \(expiry("$3")) RETURNING 1)
            SELECT (SELECT count(*) FROM page), (SELECT count(*) FROM gone), (SELECT max(key) FROM page)
            """, [.text(after ?? ""), .text(String(limit)), .text(String(asOf.timeIntervalSince1970))])
        guard let row = rows.first else { throw .unavailable("PostgreSQL gave no answer to a sweep") }
        let visited = Int(try Self.bigint(row[0], "sweep"))
        let deleted = Int(try Self.bigint(row[1], "sweep"))
        let last = row[2].map { String(decoding: $0, as: UTF8.self) }
        return SweepPage(visited: visited, deleted: deleted, cursor: visited < limit ? nil : last)
    }

    // MARK: Schema

    /// Creates or upgrades the schema (idempotent; several processes at once take turns under an
    /// advisory lock), and the `integrations` view the product's own code can read.
    package func migrate() throws(StoreError) {
        _ = try query(idempotent: true, migrationSQL, [])
    }

    private var migrationSQL: String {
        """
        DO $migrate$ BEGIN
          PERFORM pg_advisory_xact_lock(hashtext('compass_meta_migrate:\(schema)'));
          -- A schema at this version already: nothing to lock or make.
          IF to_regclass('\(schema).schema_version') IS NOT NULL THEN
            IF EXISTS (SELECT 1 FROM \(schema).schema_version WHERE version >= \(Self.schemaVersion)) THEN RETURN; END IF;
          END IF;
          CREATE SCHEMA IF NOT EXISTS \(schema);
          CREATE SEQUENCE IF NOT EXISTS \(schema).versions;
          CREATE TABLE IF NOT EXISTS \(schema).records (
            key text COLLATE "C" PRIMARY KEY,
            value bytea NOT NULL,
            version bigint NOT NULL,
            expires_at timestamptz
          );
          IF to_regclass('\(schema).records_expires_at') IS NULL THEN
            CREATE INDEX records_expires_at ON \(schema).records (expires_at) WHERE expires_at IS NOT NULL;
          END IF;
          CREATE TABLE IF NOT EXISTS \(schema).schema_version (version integer NOT NULL);
          -- One row, whatever the isolation level: a second insert fails and is skipped.
          CREATE UNIQUE INDEX IF NOT EXISTS schema_version_one_row ON \(schema).schema_version ((true));
          BEGIN
            INSERT INTO \(schema).schema_version VALUES (\(Self.schemaVersion));
          EXCEPTION WHEN unique_violation THEN NULL;
          END;
          CREATE OR REPLACE VIEW \(schema).integrations AS
            SELECT substr(key, length('meta/integration/') + 1) AS tenant_id,
                   convert_from(value, 'UTF8')::jsonb AS record, version
            FROM \(schema).records
            WHERE key >= 'meta/integration/' AND starts_with(key, 'meta/integration/')
              AND (expires_at IS NULL OR expires_at > now());
        END $migrate$
        """
    }

    // MARK: Statements

    private enum Parameter {
        case text(String)
        case bytes([UInt8])
        case null
    }

    private func expiresAt(_ ttl: Int?) -> Parameter {
        guard let ttl else { return .null }
        return .text(String(clock.now.timeIntervalSince1970 + Double(ttl)))
    }

    /// An instant given as Unix seconds in a parameter, as a timestamp.
    private func expiry(_ placeholder: String) -> String { "to_timestamp(\(placeholder)::float8)" }

    /// A bigint (a version, a count) answered in binary: 8 bytes, big-endian.
    private static func bigint(_ cell: [UInt8]?, _ what: String) throws(StoreError) -> UInt64 {
        guard let cell, cell.count == 8 else { throw .unavailable("PostgreSQL answered \(what) in an unexpected shape") }
        return cell.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// One statement on the process's connection (opened, with the schema, on first use); rows
    /// of cells in binary, nil for SQL NULL. `idempotent`: may be sent again on a new connection
    /// when the kept one turns out broken.
    private func query(idempotent: Bool = false, _ sql: String, _ parameters: [Parameter]) throws(StoreError) -> [[[UInt8]?]] {
        try withConnection(idempotent: idempotent) { link, end in run(link, sql, parameters, end) }
    }

    /// `body` on the process's connection, opened (with the schema) if there is none or it
    /// broke, with the instant (`monotonicMilliseconds()`) the call must end by. A connection that
    /// broke during `body` is dropped, so the next call opens another; an idempotent `body` that
    /// failed on a kept connection which broke runs once more on a new one, within the same time.
    private func withConnection<T: Sendable>(idempotent: Bool, _ body: @Sendable (Link, Int64) -> Result<T, StoreError>) throws(StoreError)
        -> T
    {
        let started = monotonicMilliseconds()
        let end = min(started + Int64(callTimeoutMilliseconds), deadline ?? .max)
        guard end > started else { throw .unavailable("PostgreSQL not asked: the request's time had run out") }
        let outcome: Result<T, StoreError> = connection.link.withLock { kept in
            // Calls take turns: one whose time ran out while it waited sends nothing.
            guard monotonicMilliseconds() < end else {
                return .failure(.unavailable("PostgreSQL not asked: the call's time ran out while it waited for the connection"))
            }
            for attempt in 0..<2 {
                if let link = kept, compass_pq_idle(link.handle) == 0 { kept = nil }
                let reused = kept != nil
                if kept == nil {
                    switch connect(until: end) {
                    case .success(let fresh): kept = fresh
                    case .failure(let error): return .failure(error)
                    }
                }
                let link = kept!
                let result = body(link, end)
                // Never kept inside a transaction: a later call's writes would join it, seen by no
                // one and lost or committed with writes whose caller was told they failed.
                if compass_pq_connected(link.handle) == 0 || compass_pq_idle(link.handle) == 0 { link.broken = true }
                guard link.broken else { return result }
                kept = nil
                guard case .failure = result, idempotent, reused, attempt == 0, monotonicMilliseconds() < end else { return result }
            }
            return .failure(.unavailable("PostgreSQL unavailable"))
        }
        return try outcome.get()
    }

    /// A new connection, with the schema made if missing and the server's statement timeout set.
    private func connect(until end: Int64) -> Result<Link, StoreError> {
        guard compass_pq_load() != 0 else {
            return .failure(.unavailable("PostgreSQL unavailable: libpq (libpq.so.5) could not be loaded"))
        }
        var timedOut: Int32 = 0
        let budget = Int32(clamping: max(0, end - monotonicMilliseconds()))
        guard let handle = compass_pq_connect(url, budget, &timedOut) else {
            // NULL also when libpq cannot parse the URL at all; its words are not read then.
            return .failure(.unavailable("PostgreSQL unavailable: libpq could not start a connection"))
        }
        let link = Link(handle)
        guard compass_pq_connected(link.handle) != 0 else {
            if timedOut != 0 { return .failure(.unavailable("PostgreSQL unavailable: no connection within \(budget) ms")) }
            // libpq's own words, with anything of the URL masked: they can quote the password.
            let message = String(cString: compass_pq_connection_error(link.handle)).split(separator: "\n").first.map(String.init) ?? ""
            return .failure(
                .unavailable("PostgreSQL unavailable: \(Self.masked(String(message.prefix(300)), secrets: secrets).prefix(200))"))
        }
        // One round trip when the schema is there: the statement timeout set, the server told to
        // notice a client gone within a second (PostgreSQL 14 and later: a statement whose call
        // was given up is then cancelled, its locks freed), and the schema's version read.
        let setUp = """
            SELECT set_config('statement_timeout', $1, false),
                   (SELECT set_config('client_connection_check_interval', '1000', false)
                    WHERE current_setting('server_version_num')::int >= 140000),
                   (SELECT version FROM \(schema).schema_version LIMIT 1)
            """
        let timeout = [Parameter.text(String(callTimeoutMilliseconds))]
        if case .failure(let error) = run(link, setUp, timeout, end) {
            guard !link.broken else { return .failure(.unavailable("PostgreSQL unavailable: the connection failed while it was set up")) }
            // Only a missing schema or table is made here (undefined_table, invalid_schema_name);
            // any other refusal (a permission, say) is the answer. The timeout first, so that the
            // migration is bounded on the server too; then the set-up again.
            guard ["42P01", "3F000"].contains(link.lastState) else { return .failure(error) }
            let made = run(link, "SELECT set_config('statement_timeout', $1, false)", timeout, end)
                .flatMap { _ in run(link, migrationSQL, [], end) }
                .flatMap { _ in run(link, setUp, timeout, end) }
            if case .failure(let error) = made { return .failure(error) }
        }
        let host = String(cString: compass_pq_host(link.handle))
        if Self.warnsOfPlainText(host: host, encrypted: compass_pq_ssl_in_use(link.handle) != 0) {
            // Once a connection: the password and every record would cross the network in clear.
            Logger(function: "store", level: .warn).warn("postgres_without_tls", ["host": .string(host)])
        }
        return .success(link)
    }

    /// One statement, answered by `end` or given up (the connection then marked broken).
    private func run(_ link: Link, _ sql: String, _ parameters: [Parameter], _ end: Int64) -> Result<[[[UInt8]?]], StoreError> {
        guard !link.broken else { return .failure(.unavailable("PostgreSQL unavailable: the connection failed")) }
        // Nothing is sent once the time is spent: the connection stays usable.
        guard monotonicMilliseconds() < end else { return .failure(.unavailable("PostgreSQL not asked: the call's time ran out")) }
        var storage: [UnsafeMutablePointer<CChar>?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        for parameter in parameters {
            switch parameter {
            case .text(let text):
                storage.append(strdup(text))
                lengths.append(0)
                formats.append(0)
            case .bytes(let bytes):
                let copy = malloc(max(bytes.count, 1))!
                bytes.withUnsafeBufferPointer { buffer in
                    if let base = buffer.baseAddress { copy.copyMemory(from: base, byteCount: bytes.count) }
                }
                storage.append(copy.assumingMemoryBound(to: CChar.self))
                lengths.append(Int32(bytes.count))
                formats.append(1)
            case .null:
                storage.append(nil)
                lengths.append(0)
                formats.append(0)
            }
        }
        defer { for pointer in storage { free(pointer) } }
        let values = storage.map { UnsafePointer($0) }
        var timedOut: Int32 = 0
        let budget = Int32(clamping: max(0, end - monotonicMilliseconds()))
        let result = values.withUnsafeBufferPointer { valuePointer in
            compass_pq_exec(link.handle, sql, Int32(parameters.count), valuePointer.baseAddress, lengths, formats, budget, &timedOut)
        }
        defer { compass_pq_clear(result) }
        guard let result else {
            link.broken = true
            if timedOut != 0 { return .failure(.unavailable("PostgreSQL did not answer within \(budget) ms")) }
            let message = Self.masked(
                String(cString: compass_pq_connection_error(link.handle)).split(separator: "\n").first.map(String.init) ?? "",
                secrets: secrets)
            return .failure(
                .unavailable("PostgreSQL unavailable: \(message.isEmpty ? "the connection failed" : String(message.prefix(200)))"))
        }
        guard compass_pq_succeeded(result) != 0 else {
            let state = String(cString: compass_pq_sqlstate(result))
            let message = String(cString: compass_pq_message(result))
            link.lastState = state
            return .failure(
                .unavailable(
                    "PostgreSQL refused a statement (SQLSTATE \(state.isEmpty ? "none" : state)): \(Self.masked(String(message.prefix(200)), secrets: secrets))"
                ))
        }
        var rows: [[[UInt8]?]] = []
        let count = compass_pq_rows(result)
        rows.reserveCapacity(Int(count))
        let columns = compass_pq_columns(result)
        for row in 0..<count {
            var cells: [[UInt8]?] = []
            cells.reserveCapacity(Int(columns))
            for column in 0..<columns {
                if compass_pq_is_null(result, row, column) != 0 {
                    cells.append(nil)
                } else {
                    let length = Int(compass_pq_length(result, row, column))
                    cells.append(
                        length > 0 ? Array(UnsafeRawBufferPointer(start: compass_pq_value(result, row, column), count: length)) : [])
                }
            }
            rows.append(cells)
        }
        return .success(rows)
    }
}
