import CompassHandlers
import CompassHosts
import CompassMeta
import CompassPlatform
import CompassStorage

/// What the development tool (`compass-dev`) needs from the library. Not used by handlers.
package enum DevTools {
    /// Every environment variable the configuration reads.
    package static var configVariables: [String] { Config.variables }

    /// A session token for `tenantId`, signed with `secret`, valid for `seconds`.
    package static func mintSession(tenantId: String, secret: String, seconds: Int) -> String? {
        guard Tenant.isValidId(tenantId) else { return nil }
        let now = Date().unixSeconds
        return SessionVerifier(secret: Array(secret.utf8)).mint(tenantId: tenantId, expiresAt: now + Int64(seconds), issuedAt: now)
    }

    /// A `signed_request` as Meta sends it to the deauthorize and data-deletion callbacks.
    package static func signedRequest(metaUserId: String, appSecret: String) -> String {
        let payload = Base64URL.encode(
            Array(#"{"algorithm":"HMAC-SHA256","issued_at":\#(Date().unixSeconds),"user_id":"\#(metaUserId)"}"#.utf8))
        return Base64URL.encode(Crypto.hmacSHA256(key: Array(appSecret.utf8), message: Array(payload.utf8))) + "." + payload
    }

    /// Base64 of 32 random bytes: a `CREDENTIALS_KEY`.
    package static func newCredentialsKey() -> String { Data(Crypto.randomBytes(32)).base64EncodedString() }

    /// 48 random bytes as base64url: a `COMPASS_JWT_SECRET` or `CRON_SECRET`.
    package static func newSecret() -> String { Base64URL.encode(Crypto.randomBytes(48)) }
}

extension DevTools {
    /// The whole store (the one `STORE_URL` names) swept of records expired by `asOf`, as a
    /// JSON summary.
    package static func sweep(environment: [String: String], asOf: Date) throws -> String {
        let config = try Config.load(from: environment, workingDirectory: "/")
        let summary = try StoreSweep(store: try config.store.open()).runToEnd(asOf: asOf)
        return String(decoding: JSON.encode(summary), as: UTF8.self)
    }

    /// `compass-dev migrate`: the PostgreSQL schema of `STORE_URL` created or brought up to
    /// date (the store also does it on first use), or the DynamoDB table created when missing,
    /// as a JSON line; other stores have none.
    package static func migrate(environment: [String: String]) throws -> String {
        let config = try Config.load(from: environment, workingDirectory: nil)
        if case .dynamodb(let table, _, _) = config.store.location, let store = try config.store.open() as? DynamoDBStore {
            let created = try store.createTableIfMissing()
            return String(decoding: JSON.encode(JSONValue.object(["migrated": .bool(created), "table": .string(table)])), as: UTF8.self)
        }
        guard case .postgres(_, let schema) = config.store.location, let store = try config.store.open() as? PostgresStore else {
            return #"{"migrated":false,"reason":"STORE_URL is neither a PostgreSQL nor a DynamoDB store: there is nothing to migrate"}"#
        }
        try store.migrate()
        return #"{"migrated":true,"schema":"\#(schema)","version":\#(PostgresStore.schemaVersion)}"#
    }

    /// The store `storeURL` names, with AWS's variables from `environment` (a DynamoDB store's
    /// region and credentials) and nothing else of it.
    private static func store(_ storeURL: String, environment: [String: String]) throws -> any KeyValueStore {
        let aws = environment.filter { $0.key.hasPrefix("AWS_") }
        return try Config.load(from: aws.merging(["STORE_URL": storeURL]) { $1 }, workingDirectory: "/").store.open()
    }

    /// Adds 1 to a counter `times` times with compare-and-swap (retrying on conflicts): the
    /// store conformance suite runs several of these processes at once on one key. AWS's
    /// variables come from the environment (a DynamoDB store's credentials).
    package static func incrementCounter(storeURL: String, key: String, times: Int, environment: [String: String]) -> Bool {
        guard let store = try? store(storeURL, environment: environment)
        else { return false }
        for _ in 0..<times {
            while true {
                do {
                    if let current = try store.get(key) {
                        let value = Int(String(decoding: current.value, as: UTF8.self)) ?? 0
                        try store.compareAndSwap(key, Array(String(value + 1).utf8), expected: current.version, ttl: nil)
                    } else {
                        try store.create(key, Array("1".utf8), ttl: nil)
                    }
                    break
                } catch .versionMismatch, .alreadyExists {
                    continue
                } catch {
                    return false
                }
            }
        }
        return true
    }
}

extension DevTools {
    /// put, get and compare-and-swap cycles on distinct keys for `operations` operations;
    /// prints nothing, returns operations per second.
    package static func storeBenchmark(storeURL: String, operations: Int, environment: [String: String]) -> Double? {
        guard let store = try? store(storeURL, environment: environment) else { return nil }
        let value = Array(repeating: UInt8(ascii: "x"), count: 512)
        let started = monotonicMilliseconds()
        var done = 0
        var index = 0
        while done < operations {
            let key = "bench/k\(index % 1000)"
            guard let version = try? store.put(key, value, ttl: nil),
                (try? store.get(key)) != nil,
                (try? store.compareAndSwap(key, value, expected: version, ttl: nil)) != nil
            else { return nil }
            done += 3
            index += 1
        }
        let elapsed = Double(monotonicMilliseconds() - started) / 1000
        return Double(done) / max(elapsed, 0.001)
    }
}

extension DevTools {
    /// `compass-dev audit TENANT`: what the store (`STORE_URL`) holds of the tenant's events, as
    /// a JSON line: the events still queued and the dead letters (their event ids, opened with
    /// the credentials key), and how many records could not be read: an outbox entry or dead
    /// letter that does not decode or open, an integration or credential that does not decode.
    /// `scripts/soak` counts an accepted event as lost only when it is neither delivered nor here.
    package static func audit(tenant: String, environment: [String: String]) throws -> String {
        let config = try Config.load(from: environment, workingDirectory: "/")
        let records = RecordStore(store: try config.store.open())
        let cipher = CredentialCipher(keys: try config.platform.credentialCipher(), random: SecureRandom())
        var corrupt = 0
        func eventIds(_ prefix: String) throws -> [String] {
            var ids: [String] = []
            var cursor: String? = nil
            repeat {
                let page = try records.store.list(prefix: prefix, after: cursor, limit: 500)
                for (key, value) in page.entries {
                    let dedup = String(key.dropFirst(prefix.count))
                    guard let entry = try? JSON.decode(OutboxEntry.self, from: value.value),
                        let event = try? entry.event(tenant: tenant, dedupKey: dedup, cipher: cipher)
                    else {
                        corrupt += 1
                        continue
                    }
                    ids.append(event.eventId)
                }
                cursor = page.cursor
            } while cursor != nil
            return ids
        }
        let queued = try eventIds(RecordKey.outboxPrefix(tenant))
        let dead = try eventIds(RecordKey.deadPrefix(tenant))
        let integration = Result { () throws(StoreError) in try records.load(Integration.self, at: RecordKey.integration(tenant)) }
        let credential = Result { () throws(StoreError) in try records.load(IntegrationCredential.self, at: RecordKey.credential(tenant)) }
        for failure in [integration.map { _ in () }, credential.map { _ in () }] {
            if case .failure(.corrupt) = failure { corrupt += 1 }
        }
        return String(
            decoding: JSON.encode(
                JSONValue.object([
                    "queued": .array(queued.map(JSONValue.string)), "dead": .array(dead.map(JSONValue.string)),
                    "corrupt": .int(Int64(corrupt)),
                ])), as: UTF8.self)
    }
}
