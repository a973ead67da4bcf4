@testable import CompassPlatform
@testable import CompassStorage
import Foundation
import Testing

/// The executables behind lighttpd with their records in PostgreSQL: the whole flow, no token in
/// the clear in the database, and a server restarted in the middle of a run.
@Suite(.serialized) struct PostgresEndToEndTests {
    /// Every value in the store, page by page.
    func everyValue(_ store: PostgresStore) throws -> [(String, [UInt8])] {
        var values: [(String, [UInt8])] = [], cursor: String? = nil
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
        #expect(settings.status == 200 && String(decoding: settings.body, as: UTF8.self).contains(#""pixelId":"2000101""#),
                "\(String(decoding: settings.body, as: UTF8.self)) \(host.log.suffix(1500))")
        let sent = try host.events(bearer, LighttpdHost.lead("pg-flow-1"))
        #expect(sent.status == 200, "\(sent.json)")
        #expect(try host.deliveredIds().contains("pg-flow-1"))
        #expect(try host.send("POST", "/api/cron/meta/refresh", headers: [("Authorization", "Bearer cron-secret-for-tests-0123456789")]).status == 200)

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
        #expect(during.status == 503 && String(decoding: during.body, as: UTF8.self).contains("store_unavailable"),
                "\(during.status) \(String(decoding: during.body, as: UTF8.self))")
        let refused = try host.events(bearer, LighttpdHost.lead("pg-gap-1"))
        #expect(refused.status == 503, "an event the store cannot take is refused for a retry, not lost: \(refused.json)")
        try server.start()
        #expect(try host.send("GET", "/api/connect/meta/settings", headers: bearer).status == 200)
        let sent = try host.events(bearer, LighttpdHost.lead("pg-gap-1"))
        #expect(sent.status == 200, "\(sent.json)")
        #expect(try host.deliveredIds().contains("pg-gap-1"))
    }
}
