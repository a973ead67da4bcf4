import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct ApacheConfigTests {
    @Test func exactRoutesAuthorizationAndOwnVariables() throws {
        let config = try HostSetup.sample(environment: ["META_APP_ID": "1", "CRON_SECRET": "c\"x"]).apacheConfig()
        // Anchored: `/api/connect/meta` is a prefix of every other route.
        #expect(config.contains(#"ScriptAliasMatch "^/api/connect/meta$" "/srv/bin/connect""#))
        let cron = try #require(config.components(separatedBy: #"<LocationMatch "^/api/cron/meta/refresh$">"#).dropFirst().first)
        let block = try #require(cron.components(separatedBy: "</LocationMatch>").first)
        #expect(block.contains("CGIPassAuth On"))
        #expect(block.contains(#"SetEnv CRON_SECRET "c\"x""#))
        let connect = try #require(config.components(separatedBy: #"<LocationMatch "^/api/connect/meta$">"#).dropFirst().first)
        #expect(try #require(connect.components(separatedBy: "</LocationMatch>").first).contains("META_APP_ID"))
        #expect(!(try #require(connect.components(separatedBy: "</LocationMatch>").first).contains("CRON_SECRET")))
        #expect(config.contains("RequestHeader unset Proxy early"))
        let fastCGI = try HostSetup.sample(environment: ["CRON_SECRET": "c"], fastCGI: true).apacheConfig()
        #expect(!fastCGI.contains("CRON_SECRET"))
        #expect(fastCGI.contains(#""unix:/srv/data/fastcgi/send-event.sock|fcgi://compass-send-event/""#))
    }
}
