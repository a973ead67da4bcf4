import Foundation
import Testing

@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// The executables behind lighttpd with their records in PostgreSQL: the whole flow, no token in
/// the clear in the database, and a server restarted in the middle of a run.
@Suite(.serialized) struct PostgresEndToEndTests {
    /// Every value in the store, page by page.
    func everyValue(_ store: PostgresStore) throws -> [(String, [UInt8])] {
        var values: [(String, [UInt8])] = []
        var cursor: String? = nil
        repeat {
            let page = try store.list(prefix: "", after: cursor, limit: 200)
            values += page.entries.map { ($0.key, $0.value.value) }
            cursor = page.cursor
        } while cursor != nil
        return values
    }

    @Test func theWholeFlowThroughLighttpdOnPostgreSQL() throws {
        let server = try #require(PostgresServer.shared, "PostgreSQL could not be started: is postgresql installed?")
        let url = try server.createDatabase()
        let host = try LighttpdHost(extra: ["STORE_URL": url])
        let bearer = try host.readyTenant("tenant_pg")
        let settings = try host.send("GET", "/api/connect/meta/settings", headers: bearer)
        #expect(
            settings.status == 200 && String(decoding: settings.body, as: UTF8.self).contains(#""pixelId":"2000101""#),
            "\(String(decoding: settings.body, as: UTF8.self)) \(host.log.suffix(1500))")
        let sent = try host.events(bearer, LighttpdHost.lead("pg-flow-1"))
        #expect(sent.status == 200, "\(sent.json)")
        #expect(try host.deliveredIds().contains("pg-flow-1"))
        #expect(
            try host.send("POST", "/api/cron/meta/refresh", headers: [("Authorization", "Bearer cron-secret-for-tests-0123456789")]).status
                == 200)
        // The product's own code reads the integration with SQL, as docs/storage.md shows.
        let row = try server.psql(
            PostgresServer.database(of: url),
            """
            SELECT record->>'status', record->'config'->>'pixelId' FROM compass_meta.integrations WHERE tenant_id = 'tenant_pg'
            """)
        #expect(row.trimmingCharacters(in: .whitespacesAndNewlines) == "connected|2000101", "\(row)")

        // The token is in the database only sealed: no value holds one of the sandbox's tokens.
        let store = PostgresStore(url: url)
        let values = try everyValue(store)
        #expect(values.contains { $0.0 == "meta/credential/tenant_pg" })
        let leaked = values.filter { (_, value) in
            value.count >= 4 && (0...(value.count - 4)).contains { value[$0..<($0 + 4)].elementsEqual("EAAS".utf8) }
        }
        #expect(leaked.isEmpty, "\(leaked.map(\.0))")

        let cookie = [("Cookie", "compass_session=" + String(bearer[0].1.dropFirst("Bearer ".count))), ("Origin", host.base)]
        #expect(try host.send("POST", "/api/connect/meta/disconnect", headers: cookie).status == 200)
        #expect(try host.send("GET", "/api/connect/meta/settings", headers: bearer).status == 404)
        #expect(try store.get("meta/credential/tenant_pg") == nil)
    }

    @Test func aServerRestartedMidRunAnswers503ThenServesAgain() throws {
        let server = try PostgresServer()
        let url = try server.createDatabase()
        let host = try LighttpdHost(extra: ["STORE_URL": url])
        let bearer = try host.readyTenant("tenant_restart")
        server.stop()
        let during = try host.send("GET", "/api/connect/meta/settings", headers: bearer)
        #expect(
            during.status == 503 && String(decoding: during.body, as: UTF8.self).contains("store_unavailable"),
            "\(during.status) \(String(decoding: during.body, as: UTF8.self))")
        let refused = try host.events(bearer, LighttpdHost.lead("pg-gap-1"))
        #expect(refused.status == 503, "an event the store cannot take is refused for a retry, not lost: \(refused.json)")
        try server.start()
        #expect(try host.send("GET", "/api/connect/meta/settings", headers: bearer).status == 200)
        let sent = try host.events(bearer, LighttpdHost.lead("pg-gap-1"))
        #expect(sent.status == 200, "\(sent.json)")
        #expect(try host.deliveredIds().contains("pg-gap-1"))
    }

    @Test func aFastCGIProcessKeepsOneConnectionAndOpensAnotherAfterARestart() throws {
        let server = try PostgresServer()
        let url = try server.createDatabase()
        let database = PostgresServer.database(of: url)
        let world = try CGIWorld()
        world.extra["STORE_URL"] = url
        try world.connectWithPixel()
        let settings = try FastCGIProcess(
            "settings", environment: world.configuration.merging(["STORE_URL": url + "&application_name=fcgi_settings"]) { _, new in new },
            folder: world.folder.path)
        let get = FastCGIHostTests().params(world, "GET", "/api/connect/meta/settings", tenant: "tenant_a")
        for _ in 0..<5 {
            let answer = try settings.request(get)
            #expect(answer.status == 200 && answer.json["pixelId"] as? String == "2000101", "\(answer.body.prefix(300))")
        }
        let connections = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fcgi_settings'"
        #expect(try server.psql(database, connections).hasPrefix("1"), "five requests, one connection")

        // Restarted between two requests: the kept connection is found broken and the read made
        // again on a new one, so the first request after the restart is served.
        server.stop()
        try server.start()
        let afterRestart = try settings.request(get)
        #expect(afterRestart.status == 200, "\(afterRestart.body.prefix(300))")
        // Down during a request: 503, and the process serves again once the server is back.
        server.stop()
        let during = try settings.request(get)
        #expect(during.status == 503 && during.errorCode == "store_unavailable", "\(during.status) \(during.body.prefix(300))")
        try server.start()
        #expect(try settings.request(get).status == 200)
        #expect(settings.isRunning)
        #expect(try server.psql(database, connections).hasPrefix("1"))
    }
}
