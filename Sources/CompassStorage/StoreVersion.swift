import CompassPlatform
import Synchronization

/// Versions for stores that make their own (files, DynamoDB): they grow per key, and a key
/// created anew (or again after a delete) starts from the wall clock in nanoseconds with
/// random low bits, so a compare-and-swap holding a version from before a delete cannot
/// succeed on the new key.
package enum StoreVersion {
    package static func next(after previous: UInt64?) -> UInt64 {
        let nanos = UInt64(max(0, Date().timeIntervalSince1970) * 1_000_000_000)
        let fresh = (nanos & ~0xF_FFFF) | (uniqueNumber() & 0xF_FFFF)
        return max((previous ?? 0) + 1, fresh)
    }

    /// Random per process, then counted: no call for randomness per write.
    private static let seed: UInt64 = Crypto.randomBytes(8).reduce(0) { $0 << 8 | UInt64($1) }
    private static let counter = Atomic<UInt64>(0)

    /// A number no other call in this process returns, scattered.
    private static func uniqueNumber() -> UInt64 {
        let count = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return (seed ^ (count &* 0x9E37_79B9_7F4A_7C15)) >> 7
    }
}
