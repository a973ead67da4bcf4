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

    /// `bytes`, valid UTF-8, as a string literal. Two passes over a table, without a branch per
    /// byte in the first: the escapes' length is summed, the literal's room made once, then each
    /// byte written once (in JSON text quoted again there is a quote every few bytes, and
    /// appending a run per escape cost most of the time).
    package static func appendQuoted(utf8 bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        escapeLength.withUnsafeBufferPointer { table in
            var extra = 0
            for byte in bytes { extra &+= Int(table[Int(byte)]) }
            let start = out.count
            out.append(contentsOf: repeatElement(UInt8(ascii: "\""), count: bytes.count + extra + 2))
            out.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress, let source = bytes.baseAddress else { return }
                let target = base + start + 1
                guard extra > 0 else {
                    target.update(from: source, count: bytes.count)
                    return
                }
                var at = 0
                for byte in bytes {
                    target[at] = byte
                    guard table[Int(byte)] > 0 else {
                        at += 1
                        continue
                    }
                    target[at] = UInt8(ascii: "\\")
                    switch byte {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"): target[at + 1] = byte
                    case 0x0A: target[at + 1] = UInt8(ascii: "n")
                    case 0x0D: target[at + 1] = UInt8(ascii: "r")
                    case 0x09: target[at + 1] = UInt8(ascii: "t")
                    default:
                        target[at + 1] = UInt8(ascii: "u")
                        target[at + 2] = 48
                        target[at + 3] = 48
                        target[at + 4] = hex[Int(byte >> 4)]
                        target[at + 5] = hex[Int(byte & 15)]
                        at += 4
                    }
                    at += 2
                }
            }
        }
    }

    package static func quoted(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 2)
        appendQuoted(text, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
