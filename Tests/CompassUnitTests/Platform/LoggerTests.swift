import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct LoggerTests {
    @Test func writesOneJSONObjectPerLineWithRedaction() throws {
        let capture = LogCapture()
        let logger = capture.logger("callback")
        logger.setTenant("tenant_a")
        logger.redact("EAABsecrettokenvalue")
        logger.info(
            "graph_call",
            [
                "url": "https://graph/x?access_token=EAABsecrettokenvalue&client_secret=s3cr3t&zipcode=1",
                "note": .strings(["has EAABsecrettokenvalue inside"]), "count": 3,
            ])
        let line = try #require(capture.all.first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["event"] as? String == "graph_call")
        #expect(object["function"] as? String == "callback")
        #expect(object["tenant"] as? String == "tenant_a")
        #expect(object["level"] as? String == "info")
        #expect(object["count"] as? Int == 3)
        #expect(!line.contains("EAABsecrettokenvalue"))
        #expect(!line.contains("s3cr3t"))
        #expect(line.contains("zipcode=1"))
    }

    @Test func dropsLinesBelowTheLevel() {
        let capture = LogCapture()
        let logger = Logger(function: "x", level: .warn) { line in capture.logger().info("forwarded", ["line": .string(line)]) }
        logger.info("quiet")
        logger.debug("quieter")
        #expect(capture.all.isEmpty)
        logger.error("loud")
        #expect(capture.all.count == 1)
    }
}
