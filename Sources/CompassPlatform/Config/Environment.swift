/// The clock and the randomness a handler uses, injected so tests can fix them.
package protocol Clock: Sendable {
    var now: Date { get }
}

package struct SystemClock: Clock {
    package init() {}
    package var now: Date { Date() }
}

package protocol RandomSource: Sendable {
    func bytes(_ count: Int) -> [UInt8]
}

package struct SecureRandom: RandomSource {
    package init() {}
    package func bytes(_ count: Int) -> [UInt8] { Crypto.randomBytes(count) }
}

extension Date {
    package var unixSeconds: Int64 { Int64(timeIntervalSince1970.rounded(.down)) }
    package init(unixSeconds: Int64) { self.init(timeIntervalSince1970: TimeInterval(unixSeconds)) }
}
