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

    /// The decoder as it was, on Foundation's: the byte-level one must agree with it on any text.
    private func foundationDecode(_ text: String) -> [UInt8]? {
        var standard = [UInt8]()
        for char in text.utf8 {
            switch char {
            case UInt8(ascii: "-"): standard.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): standard.append(UInt8(ascii: "/"))
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "="):
                standard.append(char)
            default: return nil
            }
        }
        if standard.count % 4 == 1 { return nil }
        while standard.count % 4 != 0 { standard.append(UInt8(ascii: "=")) }
        return Data(base64Encoded: Data(standard)).map { Array($0) }
    }

    @Test func base64URLAgreesWithFoundationOnAnyTextAndAnyBytes() {
        var random = SeededGenerator(state: 64)
        // Letters whose low bits are clear and set (the bits a short last group leaves over),
        // both url-safe characters, padding, the standard alphabet's own two, and text outside.
        let characters = ["A", "B", "Q", "g", "w", "9", "-", "_", "=", "=", "+", "/", " ", "é"]
        #expect(Base64URL.decode("-9=-") == nil && Base64URL.decode("Aw9w==") == nil && Base64URL.decode("AwQ=") == [3, 4])
        var decoded = 0
        for _ in 0..<50_000 {
            let text = (0..<Int(random.next() % 11)).map { _ in characters[Int(random.next() % UInt64(characters.count))] }.joined()
            // Foundation also takes padding in the middle and more padding than the length
            // needs ("Aw9w=="); RFC 4648 does not, and nor does this decoder.
            let body = text.utf8.count - text.utf8.reversed().prefix { $0 == UInt8(ascii: "=") }.count
            let wellPadded = !text.utf8.prefix(body).contains(UInt8(ascii: "=")) && text.utf8.count - body <= (4 - body % 4) % 4
            let expected = wellPadded ? foundationDecode(text) : nil
            #expect(Base64URL.decode(text) == expected, "\(text)")
            #expect(Base64URL.decode(Substring("x" + text).dropFirst()) == expected, "\(text)")
            if expected != nil { decoded += 1 }
        }
        #expect(decoded > 5_000, "both outcomes are exercised: \(decoded) decoded")
        for length in 0..<64 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            var standard = Data(bytes).base64EncodedString()
            standard = standard.replacing("+", with: "-").replacing("/", with: "_")
            while standard.hasSuffix("=") { standard.removeLast() }
            #expect(Base64URL.encode(bytes) == standard)
            #expect(Base64URL.decode(standard) == bytes)
        }
    }

    /// Standard base64 (a Lambda body's) decodes as Foundation decodes it wherever RFC 4648 says
    /// the text is base64, and is refused where it is not, which Foundation lets through in part.
    @Test func base64AgreesWithFoundationOnWhatRFC4648Allows() {
        var random = SeededGenerator(state: 4648)
        let characters = ["A", "B", "Q", "g", "w", "9", "+", "/", "=", "=", "-", "_", " ", "\n", "é"]
        func decode(_ text: String) -> [UInt8]? { Base64Bytes.decode(ArraySlice(text.utf8)) }
        for text in ["====", "QU=D", "QUJD====", "QQ=A", "Q===", "QQ=", "QQ", "QQ==QQ=="] {
            #expect(decode(text) == nil, "\(text)")
        }
        #expect(decode("") == [] && decode("QR==") == [65] && decode("QUJ=") == [65, 66] && decode("+/+/") == [251, 255, 191])
        var decoded = 0
        for _ in 0..<50_000 {
            let text = (0..<Int(random.next() % 13)).map { _ in characters[Int(random.next() % UInt64(characters.count))] }.joined()
            let body = text.utf8.count - text.utf8.reversed().prefix { $0 == UInt8(ascii: "=") }.count
            // A multiple of four characters, `=` only as the last one or two.
            let padding = text.utf8.count - body
            let wellPadded = !text.utf8.prefix(body).contains(UInt8(ascii: "=")) && padding <= 2 && text.utf8.count % 4 == 0
            let expected = wellPadded ? Data(base64Encoded: text).map { Array($0) } : nil
            #expect(decode(text) == expected, "\(text)")
            #expect(Base64Bytes.decode(text) == expected, "\(text)")
            if expected != nil { decoded += 1 }
        }
        #expect(decoded > 2_000, "both outcomes are exercised: \(decoded) decoded")
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            #expect(decode(Data(bytes).base64EncodedString()) == bytes)
        }
    }

    /// Trimming and line-break removal work on bytes, and mean what they meant on Characters.
    @Test(arguments: [
        (" \tabc \t", "abc"), ("abc", "abc"), ("   ", ""), ("", ""), (" a b ", "a b"), ("\u{00A0}x\u{00A0}", "\u{00A0}x\u{00A0}"),
        // A space and the combining mark after it are one Character, which is not a blank.
        (" \u{0301}x ", " \u{0301}x"), ("  \u{0301}x", " \u{0301}x"), (" é ", "é"),
        // A prepended mark and the space after it are one Character too.
        ("x\u{0600} ", "x\u{0600} "), ("\r\n x", "\r\n x"),
    ])
    func trimsBlanksAsCharacters(text: String, expected: String) {
        #expect(text.trimmed == expected)
        #expect(Substring("-" + text + "-").dropFirst().dropLast().trimmed == expected)
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        let characterWise =
            text.firstIndex(where: { !isBlank($0) }).map { String(text[$0...text.lastIndex(where: { !isBlank($0) })!]) } ?? ""
        #expect(characterWise == expected)
    }

    @Test func lineBreaksAreRemovedAndNothingElse() {
        #expect("a\r\nb\nc\rd".withoutLineBreaks == "abcd")
        #expect("é\r\n😀\u{0301}".withoutLineBreaks == "é😀\u{0301}")
        #expect("plain".withoutLineBreaks == "plain")
    }

    @Test(arguments: [[], [""], ["a"], ["ads_read", "business_management"], ["", "", "x"], ["é", "\u{0301}"]])
    func concatenatesAsJoinedDoes(parts: [String]) {
        #expect(parts.concatenated(separator: ",") == parts.joined(separator: ","))
        #expect(parts.concatenated(separator: "") == parts.joined())
    }

    /// A store key read byte by byte, in one pass, against the definition as it was written
    /// first: split into Characters at each slash, each segment 1 to 255 identifier bytes. Keys
    /// drawn from identifier bytes, slashes and a few others (a space, `.`, `é`, a combining mark
    /// after a slash), of every length up to the limit, and segments of 254 to 256 bytes.
    @Test func storeKeysAreCheckedAsTheirSegmentsDefineThem() {
        func bySegments(_ key: String) -> Bool {
            !key.isEmpty && key.utf8.count <= StoreKey.maxBytes
                && key.split(separator: "/", omittingEmptySubsequences: false).allSatisfy {
                    $0.consists(of: ASCII.isIdentifier, length: 1...255)
                }
        }
        let pieces = ["a", "Z", "0", "_", "-", "/", "/", "//", " ", ".", "é", "/\u{301}", "\u{0}"]
        var generator = SystemRandomNumberGenerator()
        var valid = 0
        var keys = ["a", "/", "a/", "/a", "a//b", String(repeating: "k", count: 512), String(repeating: "k", count: 513)]
        for length in [254, 255, 256] {
            keys += ["a/" + String(repeating: "s", count: length), String(repeating: "s", count: length) + "/b"]
        }
        // Every second key is drawn from identifier bytes and slashes alone, so that valid keys
        // are common: about 2,540 of the 20,000 are (standard deviation about 45); from all the
        // pieces alone they were about 1,060, too near the bound below to hold every run.
        for draw in 0..<20_000 {
            let drawn = draw.isMultiple(of: 2) ? pieces[...] : pieces.prefix(8)
            keys.append((0..<Int.random(in: 0...12, using: &generator)).map { _ in drawn.randomElement(using: &generator)! }.joined())
        }
        for key in keys {
            #expect(StoreKey.isValidKey(key) == bySegments(key), "\(key.debugDescription)")
            if bySegments(key) { valid += 1 }
        }
        #expect(valid > 1000 && valid < keys.count - 1000, "both outcomes are exercised: \(valid) valid")
    }

    /// The byte comparisons of the event path against the standard library's over random
    /// texts of a few pieces (so that matches, near misses and prefixes come often, the needle
    /// at the very start and end too), empty ones among them.
    @Test func byteComparisonsAgreeWithTheStandardLibrary() {
        var generator = SystemRandomNumberGenerator()
        let units = ["fbclid=", "fbcli", "f", "h", "http://", "HTTP", "x", "=", "d", "fb"]
        func text() -> [UInt8] {
            Array((0..<Int.random(in: 0...5, using: &generator)).map { _ in units.randomElement(using: &generator)! }.joined().utf8)
        }
        for _ in 0..<20_000 {
            let a = text()
            let b = text()
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    #expect(ASCII.equal(a, b) == a.elementsEqual(b), "\(Array(a)) \(Array(b))")
                    #expect(ASCII.precedes(a, b) == a.lexicographicallyPrecedes(b), "\(Array(a)) \(Array(b))")
                }
                let string = String(decoding: a, as: UTF8.self)
                #expect(ASCII.contains(a, "fbclid=") == string.contains("fbclid="), "\(string)")
                #expect(ASCII.contains(a, "cl") == string.contains("cl"), "\(string)")
                #expect(ASCII.contains(a, "h") == string.contains("h"), "\(string)")
                #expect(ASCII.hasPrefix(a, "http://") == string.hasPrefix("http://"), "\(string)")
                #expect(ASCII.hasPrefix(a, "h") == string.hasPrefix("h"), "\(string)")
                var lowered: [UInt8] = [0x41]
                lowered.append(lowercasedASCII: a)
                #expect(lowered == [0x41] + Array(string.lowercased().utf8), "\(string)")
            }
        }
        for url in ["https://shop.example/?fbclid=x", "fbclid=", "x?fbclid", "https://a/?fbclif=1&fbclid="] {
            #expect(Array(url.utf8).withUnsafeBufferPointer { ASCII.contains($0, "fbclid=") } == url.contains("fbclid="), "\(url)")
        }
    }

    @Test func concatenatingIsPlus() {
        let parts = ["", "a", "/", "é", "meta/credential/", String(repeating: "x", count: 40), "日本"]
        for a in parts {
            for b in parts {
                for c in parts { #expect(String(concatenating: a, b, c) == a + b + c) }
            }
        }
        #expect(String(concatenating: "", "") == "" && String(concatenating: "only") == "only")
    }

    @Test func hexRecognisesDigests() {
        #expect(Hex.isSHA256Digest(String(repeating: "aB", count: 32)))
        #expect(!Hex.isSHA256Digest(String(repeating: "a", count: 63)))
        #expect(!Hex.isSHA256Digest(String(repeating: "g", count: 64)))
        #expect(Hex.decode("0aff") == [10, 255])
        #expect(Hex.decode("0af") == nil)
    }

    @Test func hexAppendedInPlaceIsEveryByteAsTwoDigits() {
        // Every byte value, in lengths that end inside, at and after sixteen-byte chunks; the
        // bytes end where an unreadable page begins, so a read past them crashes the test.
        let everyByte = (0...255).map { UInt8($0) }
        var generator = SystemRandomNumberGenerator()
        for length in Array(0...50) + [256] {
            let bytes = length == 256 ? everyByte : (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var out: [UInt8] = Array("x".utf8)
            JSONParserTests.atPageEnd(bytes) { Hex.append(UnsafeRawBufferPointer($0), to: &out) }
            let expected = "x" + bytes.map { String(format: "%02x", $0) }.joined()
            #expect(String(decoding: out, as: UTF8.self) == expected, "\(length) bytes")
        }
    }
}
