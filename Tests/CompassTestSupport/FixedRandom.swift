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

    /// A random source whose bytes a test chooses, to see them become the nonce.
    package struct FixedRandom: RandomSource {
        package var byte: UInt8
        package func bytes(_ count: Int) -> [UInt8] { [UInt8](repeating: byte, count: count) }
    }
#endif
