@testable import CompassPlatform
@testable import CompassStorage
import Foundation
import Testing

/// What the PostgreSQL store adds to the conformance suite (which runs on it too): its schema,
/// readable with SQL, made once however many processes start at once, and failures as
/// `unavailable`, never a crash.
@Suite struct PostgresStoreTests {
    func server() throws -> PostgresServer {
        try #require(PostgresServer.shared, "PostgreSQL could not be started: is postgresql installed?")
    }

    @Test func theSchemaIsMadeOnceWhenSixStoresStartTogether() throws {
        let url = try server().createDatabase()
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
    }

    @Test func theProductReadsAnIntegrationWithSQL() throws {
        let server = try server()
        let url = try server.createDatabase()
        try PostgresStore(url: url).put("meta/integration/tenant_sql", Array(#"{"status":"active","config":{"pixelId":"2000101"}}"#.utf8), ttl: nil)
        let database = String(url.split(separator: "/").last!.split(separator: "?")[0])
        let output = server.folder + "/answer-\(UUID().uuidString).txt"
        try server.run([PostgresServer.binaries! + "/psql", "-h", "127.0.0.1", "-p", String(server.port), "-U", "postgres", "-d", database,
                        "-At", "-o", output, "-c", "SELECT tenant_id, record->>'status', record->'config'->>'pixelId' FROM compass_meta.integrations"])
        let answer = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(answer.contains("tenant_sql|active|2000101"), "\(answer)")
    }

    @Test func compassDevMigrateMakesTheSchemaAndMayRunAgain() throws {
        let url = try server().createDatabase()
        for _ in 0..<2 {
            let process = Process()
            process.executableURL = Executables.url("compass-dev")
            process.arguments = ["migrate"]
            process.environment = ["STORE_URL": url, "SWIFT_BACKTRACE": "enable=no"]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0 && output.contains(#""migrated":true,"schema":"compass_meta","version":1"#), "\(output)")
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
            guard case .unavailable(let message) = error else { Issue.record("\(error)"); return }
            #expect(message.hasPrefix("PostgreSQL unavailable"))
        }
    }

    @Test func aSchemaNameIsCheckedAndThePasswordNeverInAnError() throws {
        #expect(throws: Config.Error.self) {
            try Config.load(from: ["STORE_URL": "postgres://u:p@h/db", "COMPASS_PG_SCHEMA": "x; DROP TABLE y"], workingDirectory: nil)
        }
        let config = try Config.load(from: ["STORE_URL": "postgresql://u:secret-pw@127.0.0.1:9/db?connect_timeout=2"], workingDirectory: nil)
        #expect(config.store == .postgres(url: "postgresql://u:secret-pw@127.0.0.1:9/db?connect_timeout=2", schema: "compass_meta"))
        do {
            _ = try config.openStore().get("a/b")
        } catch {
            #expect(!"\(error)".contains("secret-pw"), "\(error)")
        }
    }
}
