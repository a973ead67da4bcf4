// Built for tests only: Testing and @testable imports exist in debug builds, and a release
// build (scripts/serve, scripts/package-lambda) compiles this module empty.
#if DEBUG
    import Foundation

    /// Runs `body(0)` to `body(count - 1)` at once on the global queue; returns when all have.
    package func parallel(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let group = DispatchGroup()
        for index in 0..<count { DispatchQueue.global().async(group: group) { body(index) } }
        group.wait()
    }
#endif
