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
        /// `count` seeded tenants (`TenantSeeder`), their tokens registered in this world's sandbox.
        package func seed(_ count: Int, dueFraction: Double) throws {
            let seeder = TenantSeeder(
                store: store, sandbox: try FileStore(root: folder.path + "/sandbox", clock: clock),
                cipher: CredentialCipher(keys: config.platform.credentialKeys!, random: SecureRandom()),
                scopes: config.meta.scopes, renewalWindow: config.routes.renewalWindow, now: clock.now)
            #expect(try seeder.seed(count: count, dueFraction: dueFraction) == count)
        }
    }
#endif
