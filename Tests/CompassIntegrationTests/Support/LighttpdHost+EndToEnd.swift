import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

extension LighttpdHost {
    /// Logs in, connects through the sandbox dialog and picks act_1000001's first pixel.
    func readyTenant(_ tenant: String, testEventCode: String? = nil) throws -> [(String, String)] {
        let cookie = try login(tenant)
        let session = [("Cookie", cookie)]
        let connect = try send("GET", "/api/connect/meta", headers: session)
        let approved = try send("GET", (connect.headers["location"] ?? "") + "&sandbox_action=approve")
        _ = try send("GET", approved.headers["location"] ?? "", headers: session)
        let code = testEventCode.map { #","testEventCode":"\#($0)""# } ?? ""
        _ = try send(
            "PUT", "/api/connect/meta/settings", headers: session + [("Origin", base)],
            body: #"{"adAccountId":"act_1000001","pixelId":"2000101"\#(code)}"#)
        return [("Authorization", "Bearer " + String(cookie.dropFirst("compass_session=".count))), ("Content-Type", "application/json")]
    }

    func events(_ bearer: [(String, String)], _ body: String, query: String = "") throws -> (status: Int, json: [String: Any]) {
        let response = try send("POST", "/api/connect/meta/events" + query, headers: bearer, body: body)
        return (response.status, (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:])
    }

    func deliveredIds(pixel: String = "2000101") throws -> [String] {
        let answer = try send("GET", "/graph/sandbox/events?pixel=\(pixel)")
        let object = try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]
        return (object?["events"] as? [[String: Any]])?.compactMap { ($0["event"] as? [String: Any])?["event_id"] as? String } ?? []
    }

    func fault(_ kind: String, path: String, remaining: Int = 1) throws {
        _ = try send("POST", "/graph/sandbox/faults", body: #"{"kind":"\#(kind)","path":"\#(path)","remaining":\#(remaining)}"#)
    }

    /// refresh-cron as cron runs it: no CGI variables, the configuration only.
    func runCronDirectly() throws -> [String: Any] {
        var env = environment.filter { Config.variables.contains($0.key) }
        env["SWIFT_BACKTRACE"] = "enable=no"
        let result = try Executables.runCGI("refresh-cron", environment: env)
        return (try? JSONSerialization.jsonObject(with: Data(result.stdout))) as? [String: Any] ?? [
            "raw": result.text, "status": result.status,
        ]
    }

    static func lead(_ id: String, secondsAgo: Int64 = 60) -> String {
        #"{"eventName":"Lead","eventTime":\#(Date().unixSeconds - secondsAgo),"actionSource":"system_generated","eventId":"\#(id)","userData":{"em":"\#(id)@example.com","external_id":"\#(id)"}}"#
    }

    static func batch(_ ids: [String]) -> String { #"{"events":[\#(ids.map { lead($0) }.joined(separator: ","))]}"# }
}
