import CompassPlatform

/// Which `user_data` keys an event carries: a set over the keys Meta lists (hashed and plain),
/// held as one bit each instead of a set of strings, which every event of a request used to
/// allocate and hash. Its elements are the key names in sorted order.
package struct MatchKeys: Sendable, Hashable, Sequence, ExpressibleByArrayLiteral, CustomStringConvertible {
    /// Every key, sorted: a key's place here is its bit.
    package static let names: [String] = UserDataNormalizer.hashedKeys.union(UserDataNormalizer.plainKeys).sorted()
    private static let bitOfName: [String: Int] = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })

    /// Bit n: the key at place n of `names`.
    package private(set) var bits: UInt64 = 0

    package init() {}

    /// The known names of `names`; any other name is not a user_data key and is left out.
    package init(_ names: some Sequence<String>) {
        for name in names { insert(name) }
    }

    package init(arrayLiteral names: String...) { self.init(names) }

    package mutating func insert(_ name: String) {
        if let bit = Self.bitOfName[name] { bits |= 1 << UInt64(bit) }
    }

    /// The key at `place` in `MatchKeys.names`.
    package mutating func insert(place: Int) { bits |= 1 << UInt64(place) }

    package func contains(_ name: String) -> Bool {
        guard let bit = Self.bitOfName[name] else { return false }
        return bits & (1 << UInt64(bit)) != 0
    }

    package func contains(place: Int) -> Bool { bits & (1 << UInt64(place)) != 0 }

    package var count: Int { bits.nonzeroBitCount }
    package var isEmpty: Bool { bits == 0 }
    package var underestimatedCount: Int { count }
    package var description: String { "[" + map { "\"\($0)\"" }.joined(separator: ", ") + "]" }

    package struct Iterator: IteratorProtocol {
        var rest: UInt64
        package mutating func next() -> String? {
            guard rest != 0 else { return nil }
            let bit = rest.trailingZeroBitCount
            rest &= rest - 1
            return MatchKeys.names[bit]
        }
    }

    package func makeIterator() -> Iterator { Iterator(rest: bits) }
}
