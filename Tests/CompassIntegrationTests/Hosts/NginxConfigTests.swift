import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct NginxConfigTests {
    func render(fastCGI: Bool) throws -> String {
        try HostSetup.sample(
            environment: ["META_APP_ID": "1", "COMPASS_JWT_SECRET": "s\"e$c\\ret", "CRON_SECRET": "c"],
            fastCGI: fastCGI
        ).nginxConfig()
    }

    @Test func eachRouteGetsOnlyItsOwnVariablesAndLimits() throws {
        let config = try render(fastCGI: false)
        let connect = try #require(config.components(separatedBy: "location = /api/connect/meta {").dropFirst().first)
        let block = try #require(connect.components(separatedBy: "\n        }").first)
        #expect(block.contains(#"fastcgi_param META_APP_ID "1";"#))
        #expect(!block.contains("CRON_SECRET"))
        #expect(block.contains("client_max_body_size \(65_536 + 65_536);"))
        #expect(block.contains(#"fastcgi_param SCRIPT_FILENAME "/srv/bin/connect";"#))
        // Literal values cannot end the string early or be read as nginx variables.
        #expect(block.contains(#"fastcgi_param COMPASS_JWT_SECRET "s\"e${dollar}c\\ret";"#))
        #expect(block.contains(#"fastcgi_param HTTP_PROXY "";"#))
        #expect(config.contains("location = /api/connect/meta/events/replay {"))
    }

    @Test func fastCGIPutsNoSecretInTheConfig() throws {
        let config = try render(fastCGI: true)
        #expect(!config.contains("COMPASS_JWT_SECRET") && !config.contains("SCRIPT_FILENAME"))
        #expect(config.contains("fastcgi_pass unix:/srv/data/fastcgi/send-event.sock;"))
    }

    /// nginx's errors quote the request line (the callback's code and state in its query): its
    /// error log keeps only what is critical, and it has no access log.
    @Test func theLogsHoldNoQueryString() throws {
        for fastCGI in [false, true] {
            let config = try render(fastCGI: fastCGI)
            #expect(config.contains("/nginx-error.log crit;") && config.contains("access_log off;"))
        }
    }
}
