import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct LighttpdConfigTests {
    func render(sandbox: Bool) throws -> String {
        try HostSetup.sample(
            environment: ["META_APP_ID": "1", "COMPASS_JWT_SECRET": "s\"e\\cret", "CRON_SECRET": "c"],
            sandbox: sandbox
        ).lighttpdConfig()
    }

    @Test func withARealMetaAppNeitherTheSandboxNorTheDevConsoleIsServed() throws {
        let config = try render(sandbox: false)
        #expect(!config.contains("graph-sandbox"))
        // A control character encoded in a query reaches the function's JSON answer.
        #expect(config.contains(#"server.http-parseopts = ("url-ctrls-reject" => "disable")"#))
        #expect(!config.contains("dev-console"))
        #expect(!config.contains("/dev/login"))
        for path in [
            "/api/connect/meta", "/api/connect/meta/callback", "/api/connect/meta/events/replay",
            "/api/cron/meta/refresh", "/api/connect/meta/data-deletion",
        ] {
            #expect(config.contains(#"$HTTP["url"] == "\#(path)""#), "\(path)")
        }
    }

    @Test func eachFunctionGetsOnlyItsOwnVariablesAndTimeLimit() throws {
        let config = try render(sandbox: true)
        let connect = try #require(config.components(separatedBy: #"$HTTP["url"] == "/api/connect/meta" {"#).dropFirst().first)
        let block = String(connect.prefix { $0 != "}" })
        #expect(block.contains(#""META_APP_ID" => "1""#))
        #expect(!block.contains("CRON_SECRET"))
        #expect(block.contains(#""read-timeout" => 10"#))
        // Values are quoted for lighttpd: a quote or backslash cannot end the string early.
        #expect(block.contains(#""COMPASS_JWT_SECRET" => "s\"e\\cret""#))
        #expect(config.contains(#"setenv.set-request-header = ("Proxy" => "")"#))
        #expect(config.contains("graph-sandbox") && config.contains("dev-console"))
    }
}
