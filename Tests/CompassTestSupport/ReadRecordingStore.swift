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

    /// A store that writes down every operation that reads (which keys, which prefixes), so a test
    /// can tell what a run looked at.
    package final class ReadRecordingStore: ForwardingStore, @unchecked Sendable {
        package let base: any KeyValueStore
        private let reads = Mutex<[String]>([])

        package init(base: any KeyValueStore) { self.base = base }

        /// `get KEY`, `list PREFIX`, `count PREFIX`, `sweep`, in the order they came.
        package var operations: [String] { reads.withLock { $0 } }
        package func reset() { reads.withLock { $0 = [] } }
        private func note(_ operation: String) { reads.withLock { $0.append(operation) } }

        package func get(_ key: String) throws(StoreError) -> Versioned? {
            note("get " + key)
            return try base.get(key)
        }
        package func list(prefix: String, after: String?, limit: Int) throws(StoreError) -> KeyPage {
            note("list " + prefix)
            return try base.list(prefix: prefix, after: after, limit: limit)
        }
        package func count(prefix: String) throws(StoreError) -> Int {
            note("count " + prefix)
            return try base.count(prefix: prefix)
        }
        package func sweepExpired(after: String?, limit: Int, asOf: Date) throws(StoreError) -> SweepPage {
            note("sweep")
            return try base.sweepExpired(after: after, limit: limit, asOf: asOf)
        }
    }
#endif
