import Foundation
import Testing

@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassTestSupport

@Suite struct MatchKeysTests {
    @Test func everyUserDataKeyHasABitAndTheSetReadsLikeASetOfNames() {
        #expect(MatchKeys.names.count == UserDataNormalizer.hashedKeys.count + UserDataNormalizer.plainKeys.count)
        #expect(MatchKeys.names.count <= 64)
        var keys: MatchKeys = ["ph", "em", "fbc"]
        keys.insert("em")
        keys.insert("not_a_key")
        #expect(Array(keys) == ["em", "fbc", "ph"])
        #expect(keys.count == 3 && keys.contains("ph") && !keys.contains("fn") && !keys.contains("not_a_key"))
        #expect(keys == MatchKeys(["fbc", "ph", "em"]))
        #expect(MatchKeys(MatchKeys.names).count == MatchKeys.names.count && MatchKeys().isEmpty)
    }
}
