import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

extension CGIWorld {
    func run(_ function: String, _ method: String, _ target: String, query: String, body: String, dryRun: Bool) throws -> Response {
        try run(function, method, target + (dryRun ? "?dryRun=1" : ""), body: body)
    }
}
