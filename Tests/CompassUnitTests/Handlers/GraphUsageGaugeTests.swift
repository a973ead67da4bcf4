import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// Meta's usage share as the last refresh-cron run's calls saw it in Meta's usage headers.
@Suite struct GraphUsageGaugeTests {
    @Test func theLastRunsHighestUsageIsShown() throws {
        let world = World(environment: ["CRON_SECRET": "cron-secret-0123456789abcdef"])
        world.readyTenant()
        world.clock.advance(2 * 86_400)
        world.transport.decorate.withLock {
            $0 = { request, answer in
                guard request.url.contains("debug_token") else { return answer }
                var decorated = answer
                decorated.headers["x-app-usage"] = #"{"call_count":62,"total_cputime":5,"total_time":7}"#
                return decorated
            }
        }
        #expect(world.drain().tokens.checked == 1)
        let values = try MetricsHandler(dependencies: world.dependencies).values()
        #expect(values[MetricSeries(MetricCatalog.graphUsage)] == 62)
    }
}
