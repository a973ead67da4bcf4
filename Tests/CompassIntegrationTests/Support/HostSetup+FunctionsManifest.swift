import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

extension HostSetup {
    /// The repository's functions.json served from /srv/bin and /srv/data on port 3000.
    static func sample(environment: [String: String], fastCGI: Bool = false, sandbox: Bool = false) throws -> HostSetup {
        let manifest = try FunctionsManifest.load(path: FunctionsManifestTests.root.appendingPathComponent("functions.json").path)
        return HostSetup(
            manifest: manifest, binDirectory: "/srv/bin", dataDirectory: "/srv/data", port: 3000,
            environment: environment, fastCGI: fastCGI, sandbox: sandbox)
    }
}
