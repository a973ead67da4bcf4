/// The clock and the randomness a handler uses, injected so tests can fix them.
protocol Clock: Sendable {
    var now: Date { get }
}

struct SystemClock: Clock {
    var now: Date { Date() }
}

protocol RandomSource: Sendable {
    func bytes(_ count: Int) -> [UInt8]
}

struct SecureRandom: RandomSource {
    func bytes(_ count: Int) -> [UInt8] { Crypto.randomBytes(count) }
}

extension Date {
    var unixSeconds: Int64 { Int64(timeIntervalSince1970.rounded(.down)) }
    init(unixSeconds: Int64) { self.init(timeIntervalSince1970: TimeInterval(unixSeconds)) }
}
