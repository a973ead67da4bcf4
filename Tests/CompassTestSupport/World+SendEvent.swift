// Built for tests only: Testing and @testable imports exist in debug builds, and a release
// build (scripts/serve, scripts/package-lambda) compiles this module empty.
#if DEBUG
    import Foundation
    import Synchronization
    import Testing

    @testable import CompassDev
    @testable import CompassHandlers
    @testable import CompassHosts
    @testable import CompassMeta
    @testable import CompassPlatform
    @testable import CompassStorage

    extension World {
        /// Connected, with act_1000001 and its first pixel chosen.
        package func readyTenant(_ tenant: String = "tenant_a", testEventCode: String? = nil) {
            connectTenant(tenant)
            var body = #"{"adAccountId":"act_1000001","pixelId":"2000101""#
            if let testEventCode { body += #","testEventCode":"\#(testEventCode)""# }
            let response = run(SettingsHandler.self, request("PUT", "/api/connect/meta/settings", tenant: tenant, body: body + "}"))
            // A regression fails the test that needs the tenant, not the whole run.
            if response.status != 200 { Issue.record("the tenant could not pick its pixel: \(response.text)") }
        }

        package func send(_ body: String, tenant: String = "tenant_a", query: String = "") -> CGIResponse {
            run(SendEventHandler.self, request("POST", "/api/connect/meta/events" + query, tenant: tenant, body: body))
        }

        /// What the sandbox accepted for a pixel.
        package func delivered(pixel: String = "2000101") -> [JSONValue] {
            let answer = sandbox.handle(.init(method: "GET", path: "/sandbox/events", query: QueryParameters(parsing: "pixel=\(pixel)")))
            return (try? JSON.decode(JSONValue.self, from: answer.body))?["events"]?.array ?? []
        }

        package func deliveredIds(pixel: String = "2000101") -> [String] {
            delivered(pixel: pixel).compactMap { $0["event"]?["event_id"]?.string }
        }

        package func drain() -> RefreshCronHandler.Summary {
            do {
                return try RefreshCronHandler(dependencies: dependencies).run()
            } catch {
                Issue.record("refresh-cron could not run: \(error)")
                return RefreshCronHandler.Summary()
            }
        }

        package func lead(_ id: String, time: Int64? = nil, email: String = "a@b.co") -> String {
            #"{"eventName":"Lead","eventTime":\#(time ?? clock.now.unixSeconds - 60),"actionSource":"system_generated","eventId":"\#(id)","userData":{"em":"\#(email)","external_id":"u-\#(id)"}}"#
        }

        package func batch(_ ids: some Sequence<String>) -> String {
            #"{"events":[\#(ids.map { lead($0) }.joined(separator: ","))]}"#
        }
    }
#endif
