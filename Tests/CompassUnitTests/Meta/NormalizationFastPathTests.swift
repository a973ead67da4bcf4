import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// The byte-level fast paths (ASCII text) give what the Unicode rules give, on every input.
@Suite struct NormalizationFastPathTests {
    static let samples = [
        "", " ", "\t\n\u{0B}\u{0C}\r ", "Mary", "  Mary Smith\t", "\u{A0}Mary\u{A0}", "\u{2003}José\u{2003}", " Zoë ", "O'Brien-Smith 3rd",
        "+1 (650) 555-1212", "00441234567890", "٣٤٥ 12345678", "Ｍａｒｙ", "\u{85}x\u{85}", "a\u{301} ", " \u{1F600} ", "日本 東京", "\r\n",
    ]

    @Test func trimmingLettersAndDigitsMatchTheUnicodeRules() {
        for text in Self.samples {
            let scalars = text.unicodeScalars
            let trimmed =
                scalars.firstIndex(where: { !$0.properties.isWhitespace }).map { first in
                    String(scalars[first...scalars.lastIndex(where: { !$0.properties.isWhitespace })!])
                } ?? ""
            #expect(text.trimmingWhitespace == trimmed, "\(text.debugDescription)")
            // The letters rule over the text's bytes: ASCII byte by byte, other text by Unicode.
            let lowered = text.lowercased()
            let letters = String(String.UnicodeScalarView(lowered.unicodeScalars.filter { $0.properties.isAlphabetic })).lowercased()
            #expect(Self.rule(.name, text) == (letters.isEmpty ? nil : letters), "\(text.debugDescription)")
            var digits = String(text.unicodeScalars.filter { ("0"..."9").contains($0) }.map { Character($0) })
            while digits.hasPrefix("0") { digits.removeFirst() }
            #expect(Self.rule(.phone, text) == ((7...15).contains(digits.count) ? digits : nil), "\(text.debugDescription)")
        }
    }

    /// The country rule's table of two letters is the set it was made from, for every pair of
    /// bytes; and the state rule, which looks only what is longer than two bytes up, misses no
    /// name of the table.
    @Test func theCountryAndStateShortcutsAgreeWithTheirTables() {
        for first in UInt8(0)...UInt8(255) {
            for second in UInt8(0)...UInt8(255) {
                let pair = String(decoding: [first, second], as: UTF8.self)
                let inSet = Array(pair.utf8) == [first, second] && GeoCodes.alpha2.contains(pair)
                #expect(UserDataRule.isAlpha2(first, second) == inSet, "\(first) \(second)")
            }
        }
        #expect(GeoCodes.usStates.keys.allSatisfy { $0.utf8.count > 2 })
    }

    @Test func everyHashedKeyHasOneRuleAndNoOtherKeyHasAny() {
        for key in UserDataNormalizer.hashedKeys { #expect(UserDataRule(key: key) != nil, "\(key)") }
        for key in UserDataNormalizer.plainKeys { #expect(UserDataRule(key: key) == nil, "\(key)") }
        // Whitespace inside a postal code goes whatever the script of the rest.
        #expect(Self.rule(.zip, "sw1a\t1aa") == "sw1a1aa")
        #expect(Self.rule(.zip, "sw1a\t1aé") == "sw1a1aé")
    }

    static func rule(_ rule: UserDataRule, _ text: String) -> String? {
        var text = text
        var out: [UInt8] = []
        return text.withUTF8 { rule.normalize($0, into: &out) } ? String(decoding: out, as: UTF8.self) : nil
    }

    @Test func aClickIdIsFoundWhereverItIsInTheQueryAndOnlyThere() {
        #expect(ConversionEvent.fbclid(in: "https://x.example/?a=1&fbclid=IwAR2.abc#top") == "IwAR2.abc")
        #expect(ConversionEvent.fbclid(in: "https://x.example/?fbclid=abc") == "abc")
        for url in [
            "https://x.example/?order=1", "https://x.example/?xfbclid=1", "https://x.example/?a=fbclid", "https://x.example/?fbclid=",
            "https://x.example/#?fbclid=abc", "https://x.example/fbclid=abc", "https://x.example/?fbc", "",
        ] {
            #expect(ConversionEvent.fbclid(in: url) == nil, "\(url)")
        }
    }
}
