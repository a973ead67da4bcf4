/// JSON text parsed once into a flat list of tokens that point into its bytes: no value built,
/// no string copied, one array for the whole text. For the event pipeline, which reads a few
/// fields of thousands of objects and copies most of their bytes through.
///
/// It takes a narrower language than `JSONParser`, never a wider one: text it takes, the parser
/// takes with the same meaning. It declines (nil) any text with a backslash escape, a member
/// name that is not ASCII (the parser compares names as Swift strings, by canonical
/// equivalence), more than 64 members in an object, nesting deeper than 64, or anything the
/// parser would refuse; the caller then parses with `JSONParser`, whose answer (a value or a
/// precise error) stands.
public struct JSONTape: Sendable {
    public typealias Kind = JSONTapeKind

    public struct Token: Sendable {
        public var kind: Kind
        /// True for an integer of at most 18 digits (no fraction, no exponent).
        public var isInteger: Bool
        /// False for a string with a byte outside ASCII (its UTF-8 checked valid).
        public var isASCII: Bool
        /// A string: its text without the quotes; a number or literal: its text; an object or
        /// array: the whole value, brackets included.
        public var start: Int32
        public var end: Int32
        /// The token after this value and everything in it.
        public var next: Int32
        /// Members of an object, elements of an array.
        public var count: Int32
    }

    package let bytes: [UInt8]
    package private(set) var tokens: [Token] = []

    package static let maxMembers = 64
    package static let maxDepth = 64

    package init?(_ bytes: [UInt8]) {
        self.bytes = bytes
        guard bytes.count < Int(Int32.max) else { return nil }
        tokens.reserveCapacity(bytes.count / 8 + 4)
        let parsed: Bool = bytes.withUnsafeBufferPointer { buffer in
            var reader = Reader(bytes: buffer)
            reader.skipWhitespace()
            guard reader.value(into: &tokens, depth: 0) else { return false }
            reader.skipWhitespace()
            return reader.index == buffer.count
        }
        guard parsed else { return nil }
    }

    // MARK: Reading

    /// The (name, value) token indices of an object's members, in order.
    package func members(of object: Int) -> [(name: Int, value: Int)] { withView { Array($0.members(of: object)) } }

    /// The token indices of an array's elements, in order.
    package func elements(of array: Int) -> [Int] { withView { Array($0.elements(of: array)) } }

    /// True when the token is the string `name` (ASCII).
    package func isString(_ index: Int, _ name: StaticString) -> Bool { withView { $0.isString(index, name) } }

    /// The whole value's bytes, as `JSONParser` takes them.
    package func valueBytes(_ index: Int) -> [UInt8] {
        let token = tokens[index]
        switch token.kind {
        case .string: return Array(bytes[Int(token.start - 1)..<Int(token.end + 1)])
        default: return Array(bytes[Int(token.start)..<Int(token.end)])
        }
    }

    /// The tape through pointers, for code that reads many tokens of it: no array retained and
    /// released, no member list allocated, per read. Valid only inside `withView`'s closure.
    /// Public, its small readers `@inlinable`: the event path reads every token through them
    /// from another module (a `package` body is not inlined there: `ASCII`).
    public struct View {
        public let bytes: UnsafeBufferPointer<UInt8>
        public let tokens: UnsafeBufferPointer<Token>

        /// The bytes of `range`.
        @inlinable public func span(_ range: Range<Int>) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: bytes[range]) }

        /// The value's text (a string's without its quotes).
        @inlinable public func text(_ index: Int) -> UnsafeBufferPointer<UInt8> {
            span(Int(tokens[index].start)..<Int(tokens[index].end))
        }

        package func string(_ index: Int) -> String { String(decoding: text(index), as: UTF8.self) }

        @inlinable public func isString(_ index: Int, _ name: StaticString) -> Bool {
            let token = tokens[index]
            guard token.kind == .string, Int(token.end - token.start) == name.utf8CodeUnitCount else { return false }
            let start = Int(token.start)
            for offset in 0..<name.utf8CodeUnitCount where bytes[start + offset] != name.utf8Start[offset] { return false }
            return true
        }

        /// A number token as `JSONValue` would hold it: an integer as Int64, else a double.
        package func number(_ index: Int) -> JSONValue {
            if let integer = integer(index) { return .int(integer) }
            let text = String(decoding: text(index), as: UTF8.self)
            if let integer = Int64(text) { return .int(integer) }
            return .double(Double(text) ?? 0)
        }

        /// An integer token's value (at most 18 digits, which fit an Int64 whatever they are),
        /// read without a String or a value built; nil for any other number.
        @inlinable public func integer(_ index: Int) -> Int64? {
            guard tokens[index].isInteger else { return nil }
            let digits = text(index)
            let negative = digits.first == UInt8(ascii: "-")
            var value: Int64 = 0
            for byte in digits.dropFirst(negative ? 1 : 0) { value = value * 10 + Int64(byte - 48) }
            return negative ? -value : value
        }

        /// A number token as `JSONValue.write` writes its `number`: an integer in decimal
        /// without a value built, a fraction already as Swift writes its Double as it is, any
        /// other through `number`.
        package func writeNumber(_ index: Int, into out: inout [UInt8]) {
            if let integer = integer(index) {
                out.append(decimal: integer)
            } else if canonicalFraction(index) != nil {
                out.append(contentsOf: text(index))
            } else {
                number(index).write(into: &out)
            }
        }

        /// The digits before the point of a number token written as Swift writes a Double
        /// (`String(Double(text))`), nil for any other: a fraction without an exponent, its last
        /// digit not 0, at most 15 significant digits (so that its Double's shortest form has
        /// the same digits), and at least 0.0001 when under 1 (below, Swift writes an exponent).
        package func canonicalFraction(_ index: Int) -> Int? {
            let digits = text(index)
            var at = digits.first == UInt8(ascii: "-") ? 1 : 0
            let whole = at
            while at < digits.count, ASCII.isDigit(digits[at]) { at += 1 }
            let wholeCount = at - whole
            guard wholeCount >= 1, wholeCount == 1 || digits[whole] != UInt8(ascii: "0"), at < digits.count,
                digits[at] == UInt8(ascii: "."), digits.count - at >= 2, digits[digits.count - 1] != UInt8(ascii: "0")
            else { return nil }
            let fraction = at + 1
            for offset in fraction..<digits.count where !ASCII.isDigit(digits[offset]) { return nil }
            let fractionCount = digits.count - fraction
            if wholeCount == 1 && digits[whole] == UInt8(ascii: "0") {
                var zeros = 0
                while digits[fraction + zeros] == UInt8(ascii: "0") { zeros += 1 }
                guard zeros <= 3, fractionCount - zeros <= 15 else { return nil }
            } else {
                guard wholeCount + fractionCount <= 15 else { return nil }
            }
            return wholeCount
        }

        @inlinable public func members(of object: Int) -> Members { Members(tokens: tokens, object: object) }
        @inlinable public func elements(of array: Int) -> Elements { Elements(tokens: tokens, array: array) }

        /// An object's members as (name, value) token indices, in order.
        public struct Members: Sequence, IteratorProtocol {
            @usableFromInline let tokens: UnsafeBufferPointer<Token>
            @usableFromInline var left: Int, name: Int
            @inlinable init(tokens: UnsafeBufferPointer<Token>, object: Int) {
                (self.tokens, left, name) = (tokens, Int(tokens[object].count), object + 1)
            }
            @inlinable public var underestimatedCount: Int { left }
            @inlinable public mutating func next() -> (name: Int, value: Int)? {
                guard left > 0 else { return nil }
                defer { (left, name) = (left - 1, Int(tokens[name + 1].next)) }
                return (name, name + 1)
            }
        }

        /// An array's elements as token indices, in order.
        public struct Elements: Sequence, IteratorProtocol {
            @usableFromInline let tokens: UnsafeBufferPointer<Token>
            @usableFromInline var left: Int, item: Int
            @inlinable init(tokens: UnsafeBufferPointer<Token>, array: Int) {
                (self.tokens, left, item) = (tokens, Int(tokens[array].count), array + 1)
            }
            @inlinable public var underestimatedCount: Int { left }
            @inlinable public mutating func next() -> Int? {
                guard left > 0 else { return nil }
                defer { (left, item) = (left - 1, Int(tokens[item].next)) }
                return item
            }
        }
    }

    package func withView<Result>(_ body: (View) -> Result) -> Result {
        bytes.withUnsafeBufferPointer { bytes in tokens.withUnsafeBufferPointer { tokens in body(View(bytes: bytes, tokens: tokens)) } }
    }

    // MARK: Parsing

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        mutating func skipWhitespace() {
            while index < bytes.count {
                let byte = bytes[index]
                guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
                index += 1
            }
        }

        mutating func value(into tokens: inout [Token], depth: Int) -> Bool {
            guard depth < JSONTape.maxDepth, index < bytes.count else { return false }
            switch bytes[index] {
            case UInt8(ascii: "{"): return object(into: &tokens, depth: depth)
            case UInt8(ascii: "["): return array(into: &tokens, depth: depth)
            case UInt8(ascii: "\""): return string(into: &tokens)
            case UInt8(ascii: "t"): return literal("true", .true, into: &tokens)
            case UInt8(ascii: "f"): return literal("false", .false, into: &tokens)
            case UInt8(ascii: "n"): return literal("null", .null, into: &tokens)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number(into: &tokens)
            default: return false
            }
        }

        mutating func literal(_ word: StaticString, _ kind: Kind, into tokens: inout [Token]) -> Bool {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { return false }
            for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return false }
            tokens.append(
                Token(
                    kind: kind, isInteger: false, isASCII: true, start: Int32(index), end: Int32(index + count),
                    next: Int32(tokens.count + 1), count: 0))
            index += count
            return true
        }

        /// A container's token, opened at its bracket (its end, next and count set by `close`);
        /// `empty` when the closing bracket follows at once (then already closed).
        mutating func open(_ kind: Kind, closer: UInt8, into tokens: inout [Token]) -> (at: Int, empty: Bool) {
            let at = tokens.count
            let start = index
            tokens.append(Token(kind: kind, isInteger: false, isASCII: true, start: Int32(start), end: 0, next: 0, count: 0))
            index += 1
            skipWhitespace()
            guard index < bytes.count, bytes[index] == closer else { return (at, false) }
            index += 1
            _ = close(at, count: 0, into: &tokens)
            return (at, true)
        }

        mutating func object(into tokens: inout [Token], depth: Int) -> Bool {
            let (at, empty) = open(.object, closer: UInt8(ascii: "}"), into: &tokens)
            if empty { return true }
            var count = 0
            // One bit per name read, chosen by its length and its first and last bytes: a name
            // whose bit is not set yet is not among the names before it.
            var seen: UInt64 = 0
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), string(into: &tokens) else { return false }
                let name = tokens.count - 1
                // Names compared as bytes mean what the parser's string comparison means only in ASCII.
                guard tokens[name].isASCII, count < JSONTape.maxMembers else { return false }
                let bit = nameBit(tokens[name])
                if seen & bit != 0 {
                    // The names before this one, found from the first through each value's next token.
                    var other = at + 1
                    for _ in 0..<count {
                        if same(tokens[other], tokens[name]) { return false }
                        other = Int(tokens[other + 1].next)
                    }
                }
                seen |= bit
                count += 1
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
                index += 1
                skipWhitespace()
                guard value(into: &tokens, depth: depth + 1) else { return false }
                skipWhitespace()
                guard index < bytes.count else { return false }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == UInt8(ascii: "}") else { return false }
                index += 1
                return close(at, count: count, into: &tokens)
            }
        }

        func nameBit(_ name: Token) -> UInt64 {
            let length = Int(name.end - name.start)
            guard length > 0 else { return 1 }
            let mix = UInt64(length) &* 0x9E37 &+ UInt64(bytes[Int(name.start)]) &* 0x1F3 &+ UInt64(bytes[Int(name.end) - 1])
            return 1 << (mix % 64)
        }

        func same(_ a: Token, _ b: Token) -> Bool {
            guard a.end - a.start == b.end - b.start else { return false }
            for offset in 0..<Int(a.end - a.start) where bytes[Int(a.start) + offset] != bytes[Int(b.start) + offset] { return false }
            return true
        }

        mutating func array(into tokens: inout [Token], depth: Int) -> Bool {
            let (at, empty) = open(.array, closer: UInt8(ascii: "]"), into: &tokens)
            if empty { return true }
            var count = 0
            while true {
                skipWhitespace()
                guard value(into: &tokens, depth: depth + 1) else { return false }
                count += 1
                skipWhitespace()
                guard index < bytes.count else { return false }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == UInt8(ascii: "]") else { return false }
                index += 1
                return close(at, count: count, into: &tokens)
            }
        }

        func close(_ at: Int, count: Int, into tokens: inout [Token]) -> Bool {
            tokens[at].end = Int32(index)
            tokens[at].next = Int32(tokens.count)
            tokens[at].count = Int32(count)
            return true
        }

        mutating func string(into tokens: inout [Token]) -> Bool {
            index += 1
            let start = index
            let plain = JSONParser.scanPlainString(bytes, from: start)
            index = plain.end
            let ascii = plain.isASCII
            // Escapes are left to the parser; so are control characters (an error there).
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return false }
            if !ascii, String(validating: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self) == nil { return false }
            tokens.append(
                Token(
                    kind: .string, isInteger: false, isASCII: ascii, start: Int32(start), end: Int32(index),
                    next: Int32(tokens.count + 1), count: 0))
            index += 1
            return true
        }

        mutating func number(into tokens: inout [Token]) -> Bool {
            let start = index
            let scanned = JSONParser.scanNumber(bytes, from: start)
            index = scanned.end
            guard scanned.valid else { return false }
            var integer = scanned.isInteger
            let digits = index - start - (bytes[start] == UInt8(ascii: "-") ? 1 : 0)
            if integer && digits > 18 { integer = false }
            // The parser refuses a number whose double is not finite (1e999); without an
            // exponent and with fewer than 300 digits it is finite.
            let exponent = bytes[start..<index].contains { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
            if !integer && (exponent || index - start >= 300) {
                let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                guard let double = Double(text), double.isFinite else { return false }
            }
            tokens.append(
                Token(
                    kind: .number, isInteger: integer, isASCII: true, start: Int32(start), end: Int32(index),
                    next: Int32(tokens.count + 1), count: 0))
            return true
        }
    }
}

/// A tape token's kind. Public, with a public `@inlinable` `==`: the synthesized one is reached
/// from another module only through `Equatable`'s witness (a call and a thunk per test), and a
/// `package` type's inlinable code is not serialized for other modules (`ASCII`).
public enum JSONTapeKind: UInt8, Sendable {
    case object, array, string, number, `true`, `false`, null

    @inlinable public static func == (a: JSONTapeKind, b: JSONTapeKind) -> Bool { a.rawValue == b.rawValue }
}
