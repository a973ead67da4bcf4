import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONParser.parse(Array(#" {"a":[1,-2.5,3e2,true,false,null,"x\"y\\z\u00e9\ud83d\ude00"],"b":{}} "#.utf8))
        #expect(
            value
                == .object([
                    "a": .array([
                        .int(1), .double(-2.5), .double(300), .bool(true), .bool(false), .null,
                        .string("x\"y\\zé😀"),
                    ]), "b": .object([:]),
                ]))
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "tru", "\"\u{1}\"", "\"\\x\"", "\"\\ud800\"",
        "{\"a\":1,\"a\":2}", "1 2", "1e400", "[\"\u{7f}\"", "nul", "{\"a\" 1}",
    ])
    func rejectsMalformedText(text: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Array(text.utf8)) }
    }

    @Test func rejectsInvalidUTF8AndDeepNesting() {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
        let deep = Array(repeating: UInt8(ascii: "["), count: 100_000)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(deep) }
    }

    @Test func theStringScansStopWhereAByteByByteScanStops() throws {
        // Each kind of byte that ends a plain run (quote, backslash, control character), one
        // outside ASCII and those around the ends of the ranges that are plain, at every place of
        // a string of 40 bytes: inside a sixteen-byte chunk and a word, at their first and last
        // byte, in the tail; scanned from each of the first sixteen places, both ways.
        let specials: [[UInt8]] = [
            [0x22], [0x5C, 0x6E], [0x00], [0x01], [0x1F], [0xC3, 0xA9], [0x7F], [0x80], [0xFF], [0x20, 0x21, 0x5B, 0x5D, 0x23],
        ]
        for special in specials {
            for place in 0...40 {
                var text = Array(repeating: UInt8(ascii: "a"), count: 40)
                text.insert(contentsOf: special, at: place)
                // Also with a byte outside ASCII a little after it, which a run it ends must not count.
                var followed = text
                followed.insert(contentsOf: [0xC3, 0xA9], at: min(place + special.count + 3, followed.count))
                for start in 0..<16 {
                    for text in [text, followed] {
                        let naiveEnd = text[start...].firstIndex { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 } ?? text.count
                        let naiveASCII = text[start..<naiveEnd].allSatisfy { $0 < 0x80 }
                        for scan in [JSONParser.scanPlainString, JSONParser.scanPlainStringByWords] {
                            let scanned = Self.atPageEnd(text) { scan($0, start) }
                            #expect(scanned.end == naiveEnd && scanned.isASCII == naiveASCII, "\(special) at \(place) from \(start)")
                        }
                    }
                }
                // And the parser and the tape read the string as they read it byte by byte.
                let literal = [0x22] + text + [0x22]
                let parsed = try? JSONParser.parse(literal)
                switch special {
                case [0x22], [0x00], [0x01], [0x1F], [0x80], [0xFF]: #expect(parsed == nil)
                case [0x5C, 0x6E]:
                    #expect(parsed == .string(String(decoding: text, as: UTF8.self).replacingOccurrences(of: "\\n", with: "\n")))
                default: #expect(parsed == .string(String(decoding: text, as: UTF8.self)))
                }
                let tape = JSONTape(literal)
                #expect((tape != nil) == (parsed != nil && special != [0x5C, 0x6E]), "\(special) at \(place)")
                if let tape { #expect(tape.tokens[0].isASCII == (special != [0xC3, 0xA9])) }
            }
        }
    }

    /// An object with a name twice is refused by the tape as by the parser, wherever the two
    /// are and whatever names sit between them: 2,000 objects drawn from names that share their
    /// length and their first and last bytes (what the tape's first look at a name compares).
    @Test func theTapeRefusesANameTwiceAsTheParserDoes() {
        var generator = SystemRandomNumberGenerator()
        let names = ["em", "ph", "fn", "ln", "ab", "axb", "ayb", "a", "", "azzb", "ct", "st", "b", "x_y", "xzy"]
        for _ in 0..<2_000 {
            let chosen = (0..<Int.random(in: 1...14, using: &generator)).map { _ in names.randomElement(using: &generator)! }
            let text = "{" + chosen.enumerated().map { #""\#($1)":\#($0)"# }.joined(separator: ",") + "}"
            let distinct = Set(chosen).count == chosen.count
            #expect((JSONTape(Array(text.utf8)) != nil) == distinct, "\(text)")
            #expect(((try? JSONParser.parse(Array(text.utf8))) != nil) == distinct, "\(text)")
        }
    }

    /// A fraction the tape takes as already written as Swift writes its Double is exactly that
    /// text, and every other number is written through its Double as before: 20,000 random
    /// numbers of every shape, and the edges.
    @Test func aCanonicalFractionIsWhatSwiftWritesForItsDouble() throws {
        var generator = SystemRandomNumberGenerator()
        func digits(_ count: Int) -> String { String((0..<count).map { _ in "0123456789".randomElement(using: &generator)! }) }
        var texts = [
            "0.0001", "0.00009999", "0.1", "-0.5", "19.99", "20.0", "2.50", "1e2", "1.5e-7", "123456789012.5", "999999999999999.9",
            "99999999999999.9", "0.000123456789012345", "0.0001234567890123456", "-0.0", "0.30000000000000004", "1.0000000000000001",
        ]
        for _ in 0..<20_000 {
            let whole =
                Bool.random(using: &generator)
                ? "0" : String(Int.random(in: 1...9, using: &generator)) + digits(Int.random(in: 0...14, using: &generator))
            let fraction = digits(Int.random(in: 0...18, using: &generator))
            var text = (Bool.random(using: &generator) ? "-" : "") + whole + (fraction.isEmpty ? "" : "." + fraction)
            if Int.random(in: 0..<10, using: &generator) == 0 { text += "e\(Int.random(in: -20...20, using: &generator))" }
            texts.append(text)
        }
        for text in texts {
            let tape = try #require(JSONTape(Array("[\(text)]".utf8)), "\(text)")
            let canonical = tape.withView { $0.canonicalFraction(1) }
            let swift = String(Double(text)!)
            if canonical != nil { #expect(swift == text, "\(text)") }
            var written: [UInt8] = []
            tape.withView { $0.writeNumber(1, into: &written) }
            let expected = try JSONParser.parse(Array(text.utf8))
            var reference: [UInt8] = []
            expected.write(into: &reference)
            #expect(written == reference, "\(text)")
        }
        #expect(JSONTape(Array("[1.5]".utf8))?.withView { $0.canonicalFraction(1) } == 1)
        #expect(JSONTape(Array("[2.50]".utf8))?.withView { $0.canonicalFraction(1) } == nil)
    }

    @Test func piecesAppendedInOneGoLandAfterWhatWasThere() {
        let pieces = ["", "a", "\"name\":", String(repeating: "z", count: 300)].map { Array($0.utf8) }
        var out: [UInt8] = [UInt8(ascii: "x")]
        out.append(count: 0) { _ in }
        out.append(count: pieces.reduce(1) { $0 + $1.count }) { cursor in
            for piece in pieces { piece.withUnsafeBufferPointer { cursor.put($0) } }
            cursor.put(UInt8(ascii: "}"))
        }
        #expect(out == [UInt8(ascii: "x")] + pieces.joined() + [UInt8(ascii: "}")])
    }

    @Test func decimalsAreWrittenAsStringWritesThem() {
        var generator = SystemRandomNumberGenerator()
        let values: [Int64] =
            [0, 1, -1, 9, 10, -10, 99, 100, Int64.max, Int64.min, 1_795_820_995, -1_000_000_000_000]
            + (0..<1_000).map { _ in
                Int64.random(in: Int64.min...Int64.max, using: &generator) >> Int64.random(in: 0...62, using: &generator)
            }
        for value in values {
            var out: [UInt8] = [UInt8(ascii: "x")]
            out.append(decimal: value)
            #expect(out == Array("x\(value)".utf8))
        }
    }

    @Test func quotingWritesEveryByteAsTheParserReadsItBack() throws {
        // Every ASCII byte and a letter outside it, at places of a string of 20 bytes and one of
        // 50: the first and last of a word and of a sixteen-byte chunk, in the words and bytes
        // after the chunks.
        for byte in UInt8(0)...UInt8(0x7F) {
            for (length, place) in [
                (19, 0), (19, 7), (19, 8), (19, 19), (47, 0), (47, 15), (47, 16), (47, 31), (47, 32), (47, 40), (47, 47),
            ] {
                var text = Array(repeating: UInt8(ascii: "z"), count: length)
                text.insert(byte, at: place)
                text.append(contentsOf: "é".utf8)
                var out: [UInt8] = [UInt8(ascii: "[")]
                text.withUnsafeBufferPointer { JSONText.appendQuoted(utf8: $0, to: &out) }
                out.append(UInt8(ascii: "]"))
                #expect(try JSONParser.parse(out) == .array([.string(String(decoding: text, as: UTF8.self))]), "byte \(byte)")
                let escapes = byte == 0x22 || byte == 0x5C || byte == 0x0A || byte == 0x0D || byte == 0x09 ? 1 : byte < 0x20 ? 5 : 0
                #expect(out.count == text.count + escapes + 4, "byte \(byte)")
                #expect(Self.quotedInPlace(text) == Array(out.dropFirst().dropLast()), "byte \(byte)")
            }
        }
        // Several escapes in one word or chunk, next to each other or apart, anywhere: 4,000
        // strings of random units.
        var generator = SystemRandomNumberGenerator()
        let units = ["a", "\"", "\\", "\n", "\u{1F}", "é", "\t", "zz", "\u{7F}"]
        // (Half of them without a control character: words of quotes and backslashes only.)
        let withoutControl = ["a", "\"", "\\", "é", "zz", "\u{7F}"]
        for round in 0..<4_000 {
            let pool = round.isMultiple(of: 2) ? units : withoutControl
            let text = (0..<Int.random(in: 0...60, using: &generator)).map { _ in pool.randomElement(using: &generator)! }.joined()
            var out: [UInt8] = []
            JSONText.appendQuoted(text, to: &out)
            #expect(try JSONParser.parse(out) == .string(text), "\(text.debugDescription)")
            #expect(Self.quotedInPlace(Array(text.utf8)) == out, "\(text.debugDescription)")
        }
        // Longer than the chunks the literal is written in, with escapes across their ends (and
        // nothing but six-byte escapes: a chunk filled to its last byte).
        for unit in ["ab\"", "\u{1}xyz", "é\\\n", "\u{1}", "\""] {
            let text = String(repeating: unit, count: 5_000)
            var out: [UInt8] = []
            JSONText.appendQuoted(text, to: &out)
            #expect(try JSONParser.parse(out) == .string(text))
            #expect(Self.quotedInPlace(Array(text.utf8)) == out)
        }
    }

    /// `text` quoted by `writeQuoted` into the room `quotedBound` gave, in a buffer with guard
    /// bytes after it: nil when a byte was written past that room or the ASCII test was wrong.
    static func quotedInPlace(_ text: [UInt8]) -> [UInt8]? {
        let (bound, isASCII) = text.withUnsafeBufferPointer(JSONText.quotedBound)
        guard isASCII == text.allSatisfy({ $0 < 0x80 }) else { return nil }
        var buffer = [UInt8](repeating: 0xEE, count: bound + 16)
        let written = buffer.withUnsafeMutableBufferPointer { room in
            Self.atPageEnd(text) { JSONText.writeQuoted(utf8: $0, to: room.baseAddress!) }
        }
        guard written <= bound, buffer[bound...].allSatisfy({ $0 == 0xEE }) else { return nil }
        return Array(buffer[..<written])
    }

    /// `bytes` where they end as a page the process may not read begins: a scan of them that
    /// reads one byte past their end crashes the test.
    static func atPageEnd<Result>(_ bytes: [UInt8], _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let size = (bytes.count / page + 2) * page
        guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), base != MAP_FAILED,
            mprotect(base + size - page, page, PROT_NONE) == 0
        else { fatalError("no guarded page: \(errno)") }
        defer { munmap(base, size) }
        let start = base.assumingMemoryBound(to: UInt8.self) + (size - page - bytes.count)
        if !bytes.isEmpty { bytes.withUnsafeBufferPointer { start.update(from: $0.baseAddress!, count: $0.count) } }
        return body(UnsafeBufferPointer(start: start, count: bytes.count))
    }

    @Test func serializationRoundTripsWithSortedKeys() throws {
        let value: JSONValue = .object(["z": .string("a\"b\n\u{1}é"), "a": .array([.int(-7), .double(0.5), .null])])
        let text = String(decoding: value.serialized, as: UTF8.self)
        #expect(text == #"{"a":[-7,0.5,null],"z":"a\"b\n\u0001é"}"#)
        #expect(try JSONParser.parse(value.serialized) == value)
    }
}
