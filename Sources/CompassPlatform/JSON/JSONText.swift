/// JSON string literals written by hand (RFC 8259 section 7), byte by byte, for the places
/// that build JSON text without an encoder.
package enum JSONText {
    private static let hex = Array("0123456789abcdef".utf8)

    package static func appendQuoted(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { appendQuoted(utf8: $0, to: &out) }
    }

    /// The bytes an escape adds to a byte: 1 for `\"`, `\\`, `\n`, `\r`, `\t`, 5 for another
    /// control character (`\u00XX`), 0 for the others.
    private static let escapeLength: [UInt8] = (0...255).map { byte in
        switch byte {
        case 0x22, 0x5C, 0x0A, 0x0D, 0x09: 1
        case 0..<0x20: 5
        default: 0
        }
    }

    /// `bytes`, valid UTF-8, as a string literal: pieces of 128 bytes quoted on the stack (1 KiB
    /// holds what six-byte escapes and a word's store past the end make of one; Swift gives a larger temporary buffer a heap
    /// block instead) and each appended in one copy (in JSON text quoted again there is a quote
    /// every few bytes, and appending a run per escape cost most of the time).
    package static func appendQuoted(utf8 bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { buffer in
            var start = 0
            while start < bytes.count {
                let piece = UnsafeBufferPointer(rebasing: bytes[start..<min(start + 128, bytes.count)])
                let count = writeEscaped(utf8: piece, to: buffer.baseAddress!)
                out.append(contentsOf: UnsafeBufferPointer(start: buffer.baseAddress!, count: count))
                start += piece.count
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// How much room `bytes` needs as a string literal written by `writeQuoted`: its two quotes,
    /// twice its length (six times with a control character) and the eight bytes a word's store
    /// may write past the end; and whether all of it is ASCII. A pass the compiler turns into
    /// vector instructions, for a caller that writes the literal straight into its place:
    /// counting the escapes exactly cost more than the copy it saved.
    package static func quotedBound(utf8 bytes: UnsafeBufferPointer<UInt8>) -> (bound: Int, isASCII: Bool) {
        var high: UInt8 = 0
        var low: UInt8 = 0xFF
        for byte in bytes {
            high |= byte
            low = min(low, byte)
        }
        return ((low < 0x20 ? 6 : 2) * bytes.count + 2 + 8, high < 0x80)
    }

    /// `bytes`, valid UTF-8, as a string literal at `destination`, which has room for
    /// `quotedBound(utf8: bytes).bound` bytes; returns how many it wrote.
    package static func writeQuoted(utf8 bytes: UnsafeBufferPointer<UInt8>, to destination: UnsafeMutablePointer<UInt8>) -> Int {
        destination[0] = UInt8(ascii: "\"")
        let count = 1 + writeEscaped(utf8: bytes, to: destination + 1)
        destination[count] = UInt8(ascii: "\"")
        return count + 1
    }

    /// `bytes` escaped as a string literal's inside, at `chunk`; returns how many bytes that is.
    /// Eight bytes at a time: without a control character, the word stored whole, or from each
    /// quote or backslash on with a backslash before it (in JSON text quoted again, most words
    /// hold a quote: a byte at a time, even without a branch per byte, took more instructions);
    /// with one, byte by byte. A word's store
    /// may write up to seven bytes past the escaped text's end.
    private static func writeEscaped(utf8 bytes: UnsafeBufferPointer<UInt8>, to chunk: UnsafeMutablePointer<UInt8>) -> Int {
        guard let source = bytes.baseAddress else { return 0 }
        let ones: UInt64 = 0x0101_0101_0101_0101
        /// The high bit of each byte of `word` that is zero (exact: no borrow runs between bytes).
        func zeros(_ word: UInt64) -> UInt64 { ~(((word & ~(ones &* 0x80)) &+ ~(ones &* 0x80)) | word | ~(ones &* 0x80)) }
        return escapeLength.withUnsafeBufferPointer { table in
            var index = 0
            var at = 0
            func escaped(_ byte: UInt8) {
                chunk[at] = byte
                guard table[Int(byte)] > 0 else {
                    at += 1
                    return
                }
                chunk[at] = UInt8(ascii: "\\")
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): chunk[at + 1] = byte
                case 0x0A: chunk[at + 1] = UInt8(ascii: "n")
                case 0x0D: chunk[at + 1] = UInt8(ascii: "r")
                case 0x09: chunk[at + 1] = UInt8(ascii: "t")
                default:
                    chunk[at + 1] = UInt8(ascii: "u")
                    chunk[at + 2] = 48
                    chunk[at + 3] = 48
                    chunk[at + 4] = hex[Int(byte >> 4)]
                    chunk[at + 5] = hex[Int(byte & 15)]
                    at += 4
                }
                at += 2
            }
            while index + 8 <= bytes.count {
                let word = UInt64(littleEndian: UnsafeRawPointer(source + index).loadUnaligned(as: UInt64.self))
                index += 8
                if !JSONParser.hasControl(word) {
                    // The high bit of each quote and backslash; the word is stored from `from`
                    // on up to the next, a backslash over it (and at last from the last on).
                    var marks = zeros(word ^ (ones &* 0x22)) | zeros(word ^ (ones &* 0x5C))
                    var from = 0
                    while marks != 0 {
                        let place = marks.trailingZeroBitCount &>> 3
                        UnsafeMutableRawPointer(chunk + at).storeBytes(
                            of: (word &>> UInt64(from &<< 3)).littleEndian, as: UInt64.self)
                        at &+= place &- from
                        chunk[at] = UInt8(ascii: "\\")
                        at &+= 1
                        from = place
                        marks &= marks &- 1
                    }
                    UnsafeMutableRawPointer(chunk + at).storeBytes(of: (word &>> UInt64(from &<< 3)).littleEndian, as: UInt64.self)
                    at &+= 8 &- from
                } else {
                    for offset in index - 8..<index { escaped(source[offset]) }
                }
            }
            while index < bytes.count {
                escaped(source[index])
                index += 1
            }
            return at
        }
    }

    package static func quoted(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 2)
        appendQuoted(text, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    /// The literal's bytes appended (a string literal's `.utf8` goes through the view's generic
    /// walk): a short one byte by byte, which costs less than the call that copies a buffer (most
    /// literals of a payload are two to five bytes), a longer one in one copy.
    @inlinable
    package mutating func append(literal: StaticString) {
        let count = literal.utf8CodeUnitCount
        let bytes = literal.utf8Start
        guard count > 8 else {
            for offset in 0..<count { append(bytes[offset]) }
            return
        }
        append(contentsOf: UnsafeBufferPointer(start: bytes, count: count))
    }
}

extension Array where Element == UInt8 {
    /// `value` in decimal, as `String(value)` writes it, without making the String.
    package mutating func append(decimal value: Int64) {
        var magnitude = value.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(48 + magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if value < 0 { append(UInt8(ascii: "-")) }
            append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }
}
