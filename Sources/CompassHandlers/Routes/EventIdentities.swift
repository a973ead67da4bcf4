/// The events of one request seen so far, by the pair Meta deduplicates on (`event_name`,
/// `event_id`): a copy later in the request is a duplicate. An open-addressed table of the
/// pairs' places, sized for the request's events, hashed a word at a time from a seed
/// drawn for the request: a `Set` of the two Strings spent about 3 % of a warm event's time
/// in `Hasher` (SipHash, seeded anew for each insertion). A request that collides on purpose
/// costs only itself (at most `SendEventHandler.maxEvents` events, each probed among them).
struct EventIdentities {
    private var names: [String] = []
    private var ids: [String] = []
    /// Each slot an index into `names` and `ids`, or -1.
    private var slots: [Int] = []
    private let seed: UInt64

    /// Room for `count` events (twice as many slots, a power of two; doubled if more come).
    init(count: Int, seed: UInt64) {
        self.seed = seed
        names.reserveCapacity(count)
        ids.reserveCapacity(count)
        resize(to: count)
    }

    /// Adds the pair; false when it was there already.
    mutating func insert(name: String, id: String) -> Bool {
        if names.count >= slots.count / 2 { resize(to: 2 * names.count) }
        let mask = slots.count - 1
        var slot = home(name, id, mask)
        while slots[slot] >= 0 {
            if ids[slots[slot]] == id && names[slots[slot]] == name { return false }
            slot = (slot + 1) & mask
        }
        slots[slot] = names.count
        names.append(name)
        ids.append(id)
        return true
    }

    /// Slots for at least `count` pairs at half load, the pairs held put back in.
    private mutating func resize(to count: Int) {
        var size = 16
        while size < 2 * count { size <<= 1 }
        slots = Array(repeating: -1, count: size)
        let mask = size - 1
        for entry in names.indices {
            var slot = home(names[entry], ids[entry], mask)
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = entry
        }
    }

    /// The slot a pair's probe starts at.
    private func home(_ name: String, _ id: String, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: Self.hash(id, seed: Self.hash(name, seed: seed))) & mask
    }

    /// The text's UTF-8 mixed into `seed` eight bytes at a time (a multiply and a shift each),
    /// its length last, so that "ab" + "c" and "a" + "bc" differ.
    static func hash(_ text: String, seed: UInt64) -> UInt64 {
        var text = text
        return text.withUTF8 { bytes in
            var hash = seed
            var index = 0
            func mix(_ word: UInt64) {
                hash = (hash ^ word) &* 0x9E37_79B9_7F4A_7C15
                hash ^= hash >> 29
            }
            if let base = bytes.baseAddress {
                while index + 8 <= bytes.count {
                    mix(UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)))
                    index += 8
                }
                var last: UInt64 = 0
                for (shift, byte) in bytes[index...].enumerated() { last |= UInt64(byte) << (8 * shift) }
                mix(last)
            }
            mix(UInt64(bytes.count))
            return hash ^ (hash >> 32)
        }
    }
}
