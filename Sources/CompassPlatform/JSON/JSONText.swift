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

    /// 1 for a byte written after a backslash as itself (a quote, a backslash), 0 for the others.
    private static let backslashed: [UInt8] = (0...255).map { $0 == 0x22 || $0 == 0x5C ? 1 : 0 }

    /// `bytes`, valid UTF-8, as a string literal, written on the stack a chunk at a time (1 KiB:
    /// Swift gives a larger temporary buffer a heap block instead) and each chunk appended in one
    /// copy (in JSON text quoted again there is a quote every few bytes, and appending a run per
    /// escape cost most of the time). Eight bytes at a time: copied as one word when none needs
    /// an escape; without a control character, each byte written after a backslash that the next
    /// byte overwrites unless the byte is a quote or a backslash, so that no branch depends on
    /// where the quotes are (a branch per byte mispredicted at every quote: 0.57 -> 0.35 ms for a
    /// dry run's 1.1 MB answer); with one, byte by byte.
    package static func appendQuoted(utf8 bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        guard let source = bytes.baseAddress else {
            out.append(UInt8(ascii: "\""))
            return
        }
        backslashed.withUnsafeBufferPointer { backslashed in
            escapeLength.withUnsafeBufferPointer { table in
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { buffer in
                    let chunk = buffer.baseAddress!
                    // What eight bytes can become at most (`\u00XX` each): room left before each.
                    let full = buffer.count - 48
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
                    while index < bytes.count {
                        if at > full {
                            out.append(contentsOf: UnsafeBufferPointer(start: chunk, count: at))
                            at = 0
                        }
                        guard index + 8 <= bytes.count else {
                            escaped(bytes[index])
                            index += 1
                            continue
                        }
                        let word = UInt64(littleEndian: UnsafeRawPointer(source + index).loadUnaligned(as: UInt64.self))
                        index += 8
                        if JSONParser.isPlain(word) {
                            UnsafeMutableRawPointer(chunk + at).storeBytes(of: word.littleEndian, as: UInt64.self)
                            at += 8
                        } else if !JSONParser.hasControl(word) {
                            var rest = word
                            for _ in 0..<8 {
                                let byte = UInt8(truncatingIfNeeded: rest)
                                rest >>= 8
                                chunk[at] = UInt8(ascii: "\\")
                                at &+= Int(backslashed[Int(byte)])
                                chunk[at] = byte
                                at &+= 1
                            }
                        } else {
                            for offset in index - 8..<index { escaped(bytes[offset]) }
                        }
                    }
                    out.append(contentsOf: UnsafeBufferPointer(start: chunk, count: at))
                }
            }
        }
        out.append(UInt8(ascii: "\""))
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
