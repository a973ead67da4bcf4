import Testing

@testable import CompassHandlers

@Suite struct EventIdentitiesTests {
    /// Against `Set` of the pairs, over pairs drawn from a few names and ids (so that copies
    /// come often), ids that run into the name ("ab" + "c", "a" + "bc"), lengths around a word
    /// and more pairs than the table was sized for.
    @Test func aPairIsNewOnceAsASetOfThePairsSaysSo() {
        var generator = SystemRandomNumberGenerator()
        let names = ["Purchase", "Lead", "a", "ab", "", "AddToCart", "Purchase2"]
        let ids = ["", "c", "bc", "abc", "12345678", "123456789", "1234567", "évé", String(repeating: "x", count: 40)]
        for round in 0..<200 {
            let count = Int.random(in: 0...120, using: &generator)
            // Sized for fewer than come in half the rounds: the table grows.
            var identities = EventIdentities(count: round.isMultiple(of: 2) ? count : count / 5, seed: generator.next())
            var reference: Set<[String]> = []
            for _ in 0..<count {
                let name = names.randomElement(using: &generator)!
                let id = ids.randomElement(using: &generator)! + String(Int.random(in: 0...3, using: &generator))
                let inserted = identities.insert(name: name, id: id)
                #expect(inserted == reference.insert([name, id]).inserted, "\(name) \(id)")
            }
        }
        var split = EventIdentities(count: 2, seed: 7)
        let first = split.insert(name: "ab", id: "c")
        let second = split.insert(name: "a", id: "bc")
        let again = split.insert(name: "ab", id: "c")
        #expect(first && second && !again)
    }

    /// A thousand distinct events are each new, and each copy of one is not, whatever the seed.
    @Test func everyCopyOfAThousandEventsIsFound() {
        for seed: UInt64 in [0, 1, .max, 0x9E37_79B9_7F4A_7C15] {
            var identities = EventIdentities(count: 1000, seed: seed)
            let new = (0..<1000).filter { identities.insert(name: "Purchase", id: "bench-\($0)") }
            let copies = stride(from: 0, to: 1000, by: 7).filter { identities.insert(name: "Purchase", id: "bench-\($0)") }
            let other = identities.insert(name: "Lead", id: "bench-0")
            #expect(new.count == 1000 && copies.isEmpty && other, "seed \(seed)")
        }
    }
}
