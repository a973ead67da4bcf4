import Foundation
import Testing

@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// What the PostgreSQL store adds to the conformance suite (which runs on it too): its schema,
/// readable with SQL, made once however many processes start at once, and failures as
/// `unavailable`, never a crash.
@Suite struct PostgresStoreTests {
    func server() throws -> PostgresServer {
        try #require(PostgresServer.shared, "PostgreSQL could not be started: is postgresql installed?")
    }

    @Test func theSchemaIsMadeOnceWhenSixStoresStartTogether() throws {
        let server = try server()
        let url = try server.createDatabase()
        let database = PostgresServer.database(of: url)
        // Each transaction's snapshot taken before it waits for the migration lock.
        _ = try server.psql(database, "ALTER DATABASE \(database) SET default_transaction_isolation TO 'repeatable read'")
        let failures = LogCapture()
        parallel(6) { index in
            do {
                try PostgresStore(url: url).put("race/\(index)", [UInt8(index)], ttl: nil)
            } catch {
                failures.logger().error("store_failed", ["error": .string("\(error)")])
            }
        }
        #expect(failures.all.isEmpty, "\(failures.text)")
        #expect(try PostgresStore(url: url).count(prefix: "race/") == 6)
        try PostgresStore(url: url).migrate()
        #expect(try server.psql(database, "SELECT count(*) FROM compass_meta.schema_version").hasPrefix("1\n"))
    }

    @Test func aCurrentSchemaIsNotMigratedAgainSoAHeldTableDoesNotBlockIt() throws {
        let server = try server()
        let url = try server.createDatabase()
        let database = PostgresServer.database(of: url)
        try PostgresStore(url: url).put("held/key", [1], ttl: nil)
        let hold = try RecordsHold(server, database)
        defer { hold.release() }
        // A new process's store connects and migrates without touching the held table.
        try PostgresStore(url: url, callTimeoutMilliseconds: 3_000).migrate()
    }

    /// A batch with a write the server refuses (a CHECK constraint added with psql) stores
    /// nothing, and the next call on the same store works on the same connection: the failed
    /// transaction was rolled back there, not left aborted for the connection to be dropped.
    @Test func aBatchTheServerRefusesStoresNothingAndTheNextCallWorks() throws {
        let server = try server()
        let url = try server.createDatabase()
        let database = PostgresServer.database(of: url)
        let store = PostgresStore(url: url + "&application_name=refused_batch")
        try store.put("warm/up", [1], ttl: nil)
        _ = try server.psql(database, "ALTER TABLE compass_meta.records ADD CONSTRAINT refused_keys CHECK (key NOT LIKE 'refused/%')")
        let backends = "SELECT pid FROM pg_stat_activity WHERE application_name = 'refused_batch' ORDER BY pid"
        let before = try server.psql(database, backends)
        #expect(throws: StoreError.self) {
            try store.write([.put("ok/1", [1], ttl: nil), .create("refused/x", [2], ttl: nil), .put("ok/2", [3], ttl: nil)])
        }
        #expect(try store.get("ok/1") == nil)
        try store.put("after/1", [4], ttl: nil)
        #expect(try store.get("after/1")?.value == [4])
        #expect(try store.write([.put("ok/3", [5], ttl: nil)]).count == 1)
        let after = try server.psql(database, backends)
        #expect(!before.isEmpty && after == before, "the connection was replaced: \(before) -> \(after)")
    }

    @Test func theProductReadsAnIntegrationWithSQL() throws {
        let server = try server()
        let url = try server.createDatabase()
        try PostgresStore(url: url).put(
            "meta/integration/tenant_sql", Array(#"{"status":"active","config":{"pixelId":"2000101"}}"#.utf8), ttl: nil)
        let answer = try server.psql(
            PostgresServer.database(of: url),
            "SELECT tenant_id, record->>'status', record->'config'->>'pixelId' FROM compass_meta.integrations")
        #expect(answer.contains("tenant_sql|active|2000101"), "\(answer)")
    }

    @Test func aDumpOfTheSchemaRestoresIntoAnotherDatabase() throws {
        let server = try server()
        let url = try server.createDatabase()
        let copy = try server.createDatabase()
        let store = PostgresStore(url: url)
        var last: UInt64 = 0
        for index in 0..<50 { last = try store.put("dump/k\(index)", Array("value \(index)".utf8), ttl: index % 2 == 0 ? nil : 3_600) }
        let file = server.folder + "/dump-\(UUID().uuidString).pgdump"
        try server.run([
            PostgresServer.binaries! + "/pg_dump", "-h", "127.0.0.1", "-p", String(server.port), "-U", "postgres",
            "--schema=compass_meta", "--format=custom", "--file=\(file)", PostgresServer.database(of: url),
        ])
        try server.run([
            PostgresServer.binaries! + "/pg_restore", "-h", "127.0.0.1", "-p", String(server.port), "-U", "postgres",
            "--dbname=\(PostgresServer.database(of: copy))", file,
        ])
        let restored = PostgresStore(url: copy)
        #expect(
            try restored.list(prefix: "dump/", after: nil, limit: 100).entries.map {
                $0.key + "=" + String(decoding: $0.value.value, as: UTF8.self)
            }
                == store.list(prefix: "dump/", after: nil, limit: 100).entries.map {
                    $0.key + "=" + String(decoding: $0.value.value, as: UTF8.self)
                })
        #expect(try restored.get("dump/k7") == store.get("dump/k7"))
        // The sequence came with it: a write after the restore has a newer version than any before.
        #expect(try restored.put("dump/k0", [1], ttl: nil) > last)
    }

    @Test func compassDevMigrateMakesTheSchemaAndMayRunAgain() throws {
        let url = try server().createDatabase()
        for _ in 0..<2 {
            let process = Process()
            process.executableURL = Executables.url("compass-dev")
            process.arguments = ["migrate"]
            process.environment = ["STORE_URL": url, "SWIFT_BACKTRACE": "enable=no"]
            let pipe = Pipe()
            let errors = Pipe()
            process.standardOutput = pipe
            process.standardError = errors
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let logged = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0 && output.contains(#""migrated":true,"schema":"compass_meta","version":1"#), "\(output)")
            // The second run's "already exists, skipping" notices are not printed into the log.
            #expect(logged.isEmpty, "\(logged)")
        }
        #expect(try PostgresStore(url: url).count(prefix: "") == 0)
    }

    @Test func anUnreachableServerIsUnavailableNotACrash() throws {
        let store = PostgresStore(url: "postgresql://postgres@127.0.0.1:9/none?connect_timeout=2")
        #expect(throws: StoreError.self) { try store.get("a/b") }
        do {
            _ = try store.put("a/b", [1], ttl: nil)
            Issue.record("a write to an unreachable server succeeded")
        } catch {
            guard case .unavailable(let message) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(message.hasPrefix("PostgreSQL unavailable"))
        }
    }

    @Test func aSchemaNameIsCheckedAndThePasswordNeverInAnError() throws {
        #expect(throws: ConfigError.self) {
            try StoreSettings.load(
                EnvironmentReader(["STORE_URL": "postgres://u:p@h/db", "COMPASS_PG_SCHEMA": "x; DROP TABLE y"]), workingDirectory: nil)
        }
        let store = try StoreSettings.load(
            EnvironmentReader(["STORE_URL": "postgresql://u:secret-pw@127.0.0.1:9/db?connect_timeout=2"]), workingDirectory: nil)
        #expect(store.location == .postgres(url: "postgresql://u:secret-pw@127.0.0.1:9/db?connect_timeout=2", schema: "compass_meta"))
        do {
            _ = try store.open().get("a/b")
        } catch {
            #expect(!"\(error)".contains("secret-pw"), "\(error)")
        }
    }

    /// A batch whose time runs out between its BEGIN and its COMMIT leaves no transaction open on
    /// the kept connection: every later write of the same process is seen at once by another
    /// session (before, one in a few dozen such batches left the connection `idle in transaction`
    /// and the next writes "stored" inside it, invisible elsewhere).
    @Test func aBatchCutOffBeforeItsCommitLeavesNoTransactionOpen() throws {
        let server = try server()
        let base = try server.createDatabase()
        let database = PostgresServer.database(of: base)
        let store = PostgresStore(url: base + "&application_name=commit_test")
        let other = PostgresStore(url: base)
        try store.put("warm/up", [0], ttl: nil)
        var lost: [Int] = []
        var cutOff = 0
        for trial in 0..<300 {
            let bounded = store.bounded(byDeadline: monotonicMilliseconds() + Int64(1 + trial % 3))
            do {
                _ = try bounded.write([.put("batch/\(trial)/a", [1], ttl: nil), .put("batch/\(trial)/b", [2], ttl: nil)])
            } catch {
                cutOff += 1
            }
            try store.put("after/\(trial)", [UInt8(trial % 256)], ttl: nil)
            if try other.get("after/\(trial)") == nil { lost.append(trial) }
        }
        #expect(lost.isEmpty, "writes not seen by another session after trials \(lost.prefix(10)) (\(cutOff) batches cut off)")
        let open = try server.psql(
            database, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'commit_test' AND state LIKE 'idle in transaction%'")
        #expect(open.hasPrefix("0"), "\(open)")
        // A batch is whole or absent, never half.
        let halves = try server.psql(
            database,
            """
            SELECT count(*) FROM (SELECT split_part(key, '/', 2) AS trial, count(*) AS n FROM compass_meta.records
            WHERE key LIKE 'batch/%' GROUP BY 1) parts WHERE n <> 2
            """)
        #expect(halves.hasPrefix("0"), "\(halves)")
    }

    /// libpq quotes the password, or the whole URI, when it cannot parse one (a `%` or a `[` in
    /// the password is enough): neither reaches an error, a log line or an answer.
    @Test(arguments: [
        "postgresql://compass:p%zz[Secret-Pw-1@127.0.0.1:9/db",
        "postgresql://compass:Se[cret%41Pw-1@[::1/db",
        "postgres://compass:Secret-Pw-1@bad host name/db?password=Secret-Pw-2&connect_timeout=2",
    ])
    func thePasswordIsInNoMessageWhateverLibpqSays(url: String) throws {
        let secrets = ["Secret-Pw", "SecretPw", "Se[cret", "p%zz", "ecret", url]
        let settings = try StoreSettings.load(EnvironmentReader(["STORE_URL": url]), workingDirectory: nil)
        var message = ""
        do {
            _ = try settings.open().get("a/b")
        } catch {
            message = "\(error)"
        }
        #expect(message.hasPrefix("unavailable"), "\(message)")
        for secret in secrets { #expect(!message.contains(secret), "\(message)") }
        // The same through an executable: its answer and its stderr (the store_failed line).
        let world = try CGIWorld()
        world.extra["STORE_URL"] = url
        let answer = try world.run("settings", "GET", "/api/connect/meta/settings")
        #expect(answer.status == 503, "\(answer.raw)")
        #expect(answer.stderr.contains("store_failed"), "\(answer.stderr)")
        for secret in secrets {
            #expect(!answer.raw.contains(secret) && !answer.stderr.contains(secret), "\(answer.raw)\n\(answer.stderr)")
        }
    }

    /// A connection to another machine in plain text is worth a warning line at start; this
    /// machine (a Unix socket, loopback) or TLS is not.
    @Test func plainTextToAnotherHostIsWarnedOf() throws {
        #expect(PostgresStore.warnsOfPlainText(host: "db.internal.example", encrypted: false))
        #expect(PostgresStore.warnsOfPlainText(host: "10.1.2.3", encrypted: false))
        #expect(!PostgresStore.warnsOfPlainText(host: "db.internal.example", encrypted: true))
        for local in ["127.0.0.1", "localhost", "::1", "/var/run/postgresql"] {
            #expect(!PostgresStore.warnsOfPlainText(host: local, encrypted: false), "\(local)")
        }
    }

    /// The time `body` took, in milliseconds.
    func milliseconds(_ body: () -> Void) -> Int64 {
        let started = monotonicMilliseconds()
        body()
        return monotonicMilliseconds() - started
    }

    @Test func aStatementThatCannotEndIsGivenUpByTheDeadlineAndTheNextCallWorks() throws {
        let server = try server()
        let base = try server.createDatabase()
        let database = PostgresServer.database(of: base)
        let url = base + "&application_name=deadline_test"
        let store = PostgresStore(url: url, callTimeoutMilliseconds: 60_000)
        try store.put("held/key", [1], ttl: nil)
        // Another session holds the table until it is released.
        let hold = try RecordsHold(server, database)
        defer { hold.release() }

        // A copy bounded by a deadline 1 s away gives up by then, not after the 60 s of the call.
        let bounded = store.bounded(byDeadline: monotonicMilliseconds() + 1_000)
        var failure: StoreError?
        let took = milliseconds { do { _ = try bounded.get("held/key") } catch { failure = error as? StoreError } }
        guard case .unavailable(let message) = failure else {
            Issue.record("a blocked read answered: \(String(describing: failure))")
            return
        }
        #expect(message.contains("did not answer within"), "\(message)")
        #expect(took < 15_000, "given up after \(took) ms")
        // A copy whose deadline has passed does not even ask.
        #expect(throws: StoreError.self) { try store.bounded(byDeadline: monotonicMilliseconds() - 1).get("held/key") }

        hold.release()
        #expect(try store.get("held/key")?.value == [1])
        #expect(try store.bounded(byDeadline: monotonicMilliseconds() + 5_000).get("held/key")?.value == [1])
        // The copies share the process's one connection.
        #expect(try server.psql(database, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'deadline_test'").hasPrefix("1"))
    }

    @Test func aServerThatStopsAnsweringCostsOneCallTimeoutNotAHang() throws {
        let server = try PostgresServer()
        let url = try server.createDatabase()
        let store = PostgresStore(url: url, callTimeoutMilliseconds: 2_000)
        try store.put("frozen/key", [7], ttl: nil)
        let processes = server.processes()
        #expect(processes.count > 1)
        for pid in processes { kill(pid, SIGSTOP) }
        var kept: StoreError?
        var fresh: StoreError?
        // The kept connection's statement, then a new store's connection attempt, each given up.
        let tookKept = milliseconds { do { _ = try store.get("frozen/key") } catch { kept = error as? StoreError } }
        let tookFresh = milliseconds {
            do { _ = try PostgresStore(url: url, callTimeoutMilliseconds: 2_000).get("frozen/key") } catch { fresh = error as? StoreError }
        }
        for pid in processes { kill(pid, SIGCONT) }
        guard case .unavailable = kept, case .unavailable(let message) = fresh else {
            Issue.record("a frozen server answered: \(String(describing: kept)) \(String(describing: fresh))")
            return
        }
        #expect(message.contains("no connection within"), "\(message)")
        #expect(tookKept < 15_000 && tookFresh < 15_000, "given up after \(tookKept) and \(tookFresh) ms")
        #expect(try store.get("frozen/key")?.value == [7])
    }

    /// The message of the `.unavailable` a first call of `store` fails with ("" if it did not).
    func unavailableMessage(_ store: PostgresStore) -> String {
        do {
            _ = try store.get("tls/key")
            return ""
        } catch {
            guard case .unavailable(let message) = error else { return "" }
            return message
        }
    }

    @Test func tlsWithVerifyFullAndACAFileIsUsedAndChecked() throws {
        let server = try PostgresServer(tls: true)
        let database = PostgresServer.database(of: try server.createDatabase())
        let ca = try #require(server.caFile)
        let url = { (host: String, options: String) in
            "postgresql://postgres@\(host):\(server.port)/\(database)?connect_timeout=5&\(options)"
        }
        let store = PostgresStore(url: url("localhost", "sslmode=verify-full&sslrootcert=\(ca)"))
        try store.put("tls/key", [5], ttl: nil)
        #expect(try store.get("tls/key")?.value == [5])
        // The server refuses TCP without TLS: the answers above came over TLS.
        let plain = unavailableMessage(PostgresStore(url: url("localhost", "sslmode=disable")))
        #expect(plain.contains("no encryption"), "\(plain)")
        // verify-full checks the name: the certificate is for localhost, not 127.0.0.1.
        let otherName = unavailableMessage(PostgresStore(url: url("127.0.0.1", "sslmode=verify-full&sslrootcert=\(ca)")))
        #expect(otherName.contains("does not match host name"), "\(otherName)")
        // A certificate that the given CA did not sign is refused.
        let otherCA = unavailableMessage(
            PostgresStore(url: url("localhost", "sslmode=verify-full&sslrootcert=\(server.folder)/tls/other-ca.pem")))
        #expect(otherCA.contains("certificate verify failed"), "\(otherCA)")
    }

    @Test func aWriteOnAConnectionARestartBrokeIsNotSentAgain() throws {
        let server = try PostgresServer()
        let store = PostgresStore(url: try server.createDatabase())
        let first = try store.put("restart/key", [1], ttl: nil)
        server.stop()
        try server.start()
        // The kept connection is broken: a read is made again on a new one, a write is not.
        #expect(throws: StoreError.self) { try store.put("restart/key", [2], ttl: nil) }
        #expect(try store.get("restart/key")?.value == [1])
        #expect(try store.put("restart/key", [3], ttl: nil) > first)
    }
}
