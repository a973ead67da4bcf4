import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct EncodingTests {
    @Test func base64URLRoundTripsWithoutPadding() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(($0 * 37 + 251) % 256) }
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(Base64URL.decode(text) == bytes)
        }
        #expect(Base64URL.decode("a b") == nil)
        #expect(Base64URL.decode("abcde") == nil)
    }

    @Test func hexRecognisesDigests() {
        #expect(Hex.isSHA256Digest(String(repeating: "aB", count: 32)))
        #expect(!Hex.isSHA256Digest(String(repeating: "a", count: 63)))
        #expect(!Hex.isSHA256Digest(String(repeating: "g", count: 64)))
        #expect(Hex.decode("0aff") == [10, 255])
        #expect(Hex.decode("0af") == nil)
    }
}
