import CompassPlatform
import PQBridge
#if canImport(Glibc)
import Glibc
#endif

import Synchronization

/// The key-value store in PostgreSQL, through libpq (loaded on first use). One table in a schema
/// of its own (`COMPASS_PG_SCHEMA`, `compass_meta` by default): keys in byte order (`COLLATE
/// "C"`, so a prefix is an index range), values as bytes, versions from one sequence, expiry as a
/// timestamp compared with this process's clock, as the file store does. One connection per
/// process, opened by the first call (a handler that never touches the store never connects),
/// kept, and opened again after a failure; calls on it take turns. Every statement ends within
/// `statementTimeoutMilliseconds`; a failure is `.unavailable`, never a partial write (each
/// write is one statement, a batch one transaction).
package final class PostgresStore: KeyValueStore, @unchecked Sendable {
    package let schema: String
    package let statementTimeoutMilliseconds: Int
    private let url: String
    private let clock: any Clock
    private let connection = Mutex<UnsafeMutableRawPointer?>(nil)

    /// The schema's version this build writes; `migrate` brings an older one up to it.
    package static let schemaVersion = 1

    package init(url: String, schema: String = "compass_meta", clock: any Clock = SystemClock(), statementTimeoutMilliseconds: Int = 9_000) {
        self.url = url
        self.schema = schema
        self.clock = clock
        self.statementTimeoutMilliseconds = statementTimeoutMilliseconds
    }

    deinit {
        connection.withLock { if let open = $0 { compass_pq_finish(open) } }
    }

    private var table: String { "\(schema).records" }
    private var now: String { String(clock.now.timeIntervalSince1970) }
    /// The condition of a record that has not expired by the instant in parameter `now`.
    private func live(_ now: String) -> String { "(expires_at IS NULL OR expires_at > \(expiry(now)))" }

    // MARK: KeyValueStore

    package func get(_ key: String) throws(StoreError) -> Versioned? {
        try StoreKey.validate(key)
        let rows = try query("SELECT value, version FROM \(table) WHERE key = $1 AND \(live("$2"))", [.text(key), .text(now)])
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
        return try withConnection { open -> Result<[UInt64?], StoreError> in
            if case .failure(let error) = run(open, "BEGIN", []) { return .failure(error) }
            var versions: [UInt64?] = []
            versions.reserveCapacity(writes.count)
            for write in writes {
                let result: Result<[[[UInt8]?]], StoreError>
                switch write {
                case .put(let key, let value, let ttl): result = run(open, putSQL, putParameters(key, value, ttl))
                case .create(let key, let value, let ttl): result = run(open, createSQL, createParameters(key, value, ttl))
                }
                switch result {
                case .success(let rows):
                    guard let row = rows.first else {
                        if case .create = write { versions.append(nil); continue }
                        _ = run(open, "ROLLBACK", [])
                        return .failure(.unavailable("PostgreSQL answered a write without its version"))
                    }
                    do throws(StoreError) {
                        versions.append(try Self.bigint(row[0], write.key))
                    } catch {
                        _ = run(open, "ROLLBACK", [])
                        return .failure(error)
                    }
                case .failure(let error):
                    _ = run(open, "ROLLBACK", [])
                    return .failure(error)
                }
            }
            return run(open, "COMMIT", []).map { _ in versions }
        }
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
        let rows = try query("""
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
            let rows = try query("DELETE FROM \(table) WHERE key = $1 AND version = $2::bigint AND \(live("$3")) RETURNING 1",
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
        let rows = try query("""
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
        let rows = try query("SELECT count(*) FROM \(table) WHERE key >= $1 AND starts_with(key, $1) AND \(live("$2"))",
                             [.text(prefix), .text(now)])
        return Int(try Self.bigint(rows.first?[0], prefix))
    }

    @discardableResult
    package func deleteAll(prefix: String) throws(StoreError) -> Int {
        try StoreKey.validatePrefix(prefix)
        let rows = try query("""
            WITH gone AS (DELETE FROM \(table) WHERE key >= $1 AND starts_with(key, $1) RETURNING expires_at)
            SELECT count(*) FROM gone WHERE \(live("$2"))
            """, [.text(prefix), .text(now)])
        return Int(try Self.bigint(rows.first?[0], prefix))
    }

    package func sweepExpired(after: String?, limit: Int, asOf: Date) throws(StoreError) -> SweepPage {
        guard limit > 0 else { return SweepPage(visited: 0, deleted: 0, cursor: after) }
        let rows = try query("""
            WITH page AS (SELECT key, expires_at FROM \(table) WHERE key > $1 ORDER BY key LIMIT $2::bigint),
                 gone AS (DELETE FROM \(table) r USING page p WHERE r.key = p.key AND r.expires_at <= \(expiry("$3")) RETURNING 1)
            SELECT (SELECT count(*) FROM page), (SELECT count(*) FROM gone), (SELECT max(key) FROM page)
            """, [.text(after ?? ""), .text(String(limit)), .text(String(asOf.timeIntervalSince1970))])
        guard let row = rows.first else { throw .unavailable("PostgreSQL gave no answer to a sweep") }
        let visited = Int(try Self.bigint(row[0], "sweep")), deleted = Int(try Self.bigint(row[1], "sweep"))
        let last = row[2].map { String(decoding: $0, as: UTF8.self) }
        return SweepPage(visited: visited, deleted: deleted, cursor: visited < limit ? nil : last)
    }

    // MARK: Schema

    /// Creates or upgrades the schema (idempotent; several processes at once take turns under an
    /// advisory lock), and the `integrations` view the product's own code can read.
    package func migrate() throws(StoreError) {
        _ = try query(migrationSQL, [])
    }

    private var migrationSQL: String {
        """
        DO $migrate$ BEGIN
          PERFORM pg_advisory_xact_lock(hashtext('compass_meta_migrate:\(schema)'));
          CREATE SCHEMA IF NOT EXISTS \(schema);
          CREATE SEQUENCE IF NOT EXISTS \(schema).versions;
          CREATE TABLE IF NOT EXISTS \(schema).records (
            key text COLLATE "C" PRIMARY KEY,
            value bytea NOT NULL,
            version bigint NOT NULL,
            expires_at timestamptz
          );
          CREATE INDEX IF NOT EXISTS records_expires_at ON \(schema).records (expires_at) WHERE expires_at IS NOT NULL;
          CREATE TABLE IF NOT EXISTS \(schema).schema_version (version integer NOT NULL);
          IF NOT EXISTS (SELECT 1 FROM \(schema).schema_version) THEN
            INSERT INTO \(schema).schema_version VALUES (\(Self.schemaVersion));
          END IF;
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
    /// of cells in binary, nil for SQL NULL.
    private func query(_ sql: String, _ parameters: [Parameter]) throws(StoreError) -> [[[UInt8]?]] {
        try withConnection { open in run(open, sql, parameters) }
    }

    /// `body` on the process's connection, opened (with the schema) if there is none or it
    /// broke; a connection that broke during `body` is dropped, so the next call opens another.
    private func withConnection<T: Sendable>(_ body: @Sendable (UnsafeMutableRawPointer) -> Result<T, StoreError>) throws(StoreError) -> T {
        let outcome: Result<T, StoreError> = connection.withLock { open in
            if open == nil || compass_pq_connected(open) == 0 {
                if let stale = open { compass_pq_finish(stale) }
                open = nil
                switch connect() {
                case .success(let fresh): open = fresh
                case .failure(let error): return .failure(error)
                }
            }
            let result = body(open!)
            if case .failure(.unavailable) = result, compass_pq_connected(open) == 0 {
                compass_pq_finish(open)
                open = nil
            }
            return result
        }
        return try outcome.get()
    }

    private func connect() -> Result<UnsafeMutableRawPointer, StoreError> {
        guard let open = compass_pq_connect(url) else {
            return .failure(.unavailable("PostgreSQL unavailable: libpq (libpq.so.5) could not be loaded"))
        }
        guard compass_pq_connected(open) != 0 else {
            // libpq's own words name the server and the user, never the password.
            let message = String(cString: compass_pq_connection_error(open)).split(separator: "\n").first.map(String.init) ?? ""
            compass_pq_finish(open)
            return .failure(.unavailable("PostgreSQL unavailable: \(message.prefix(200))"))
        }
        let ready = run(open, "SELECT set_config('statement_timeout', $1, false)", [.text(String(statementTimeoutMilliseconds))])
            .flatMap { _ in run(open, "SELECT version FROM \(schema).schema_version", []) }
        if case .failure = ready, case .failure(let error) = run(open, migrationSQL, []) {
            // The schema was missing and could not be made (a read-only user, say).
            compass_pq_finish(open)
            return .failure(error)
        }
        return .success(open)
    }

    private func run(_ open: UnsafeMutableRawPointer, _ sql: String, _ parameters: [Parameter]) -> Result<[[[UInt8]?]], StoreError> {
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
        let result = values.withUnsafeBufferPointer { valuePointer in
            compass_pq_exec(open, sql, Int32(parameters.count), valuePointer.baseAddress, lengths, formats)
        }
        defer { compass_pq_clear(result) }
        guard let result, compass_pq_succeeded(result) != 0 else {
            let state = result.map { String(cString: compass_pq_sqlstate($0)) } ?? ""
            let message = result.map { String(cString: compass_pq_message($0)) } ?? "no answer"
            return .failure(.unavailable("PostgreSQL refused a statement (SQLSTATE \(state.isEmpty ? "none" : state)): \(message.prefix(200))"))
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
                    cells.append(length > 0 ? Array(UnsafeRawBufferPointer(start: compass_pq_value(result, row, column), count: length)) : [])
                }
            }
            rows.append(cells)
        }
        return .success(rows)
    }
}
