/// JSON string literals written by hand (RFC 8259 section 7), byte by byte, for the places
/// that build JSON text without an encoder.
package enum JSONText {
    private static let hex = Array("0123456789abcdef".utf8)

    package static func appendQuoted(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { appendQuoted(utf8: $0, to: &out) }
    }

    /// UTF-8 bytes (valid: the caller's guarantee) as a JSON string literal. Two passes: the
    /// room the escapes need, then every byte written once into it (JSON text quoted whole, as a
    /// Lambda answer's body is, has a quote every few bytes).
    package static func appendQuoted(utf8 bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        var extra = 0
        for byte in bytes where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
            extra += byte == 0x0A || byte == 0x0D || byte == 0x09 || byte >= 0x20 ? 1 : 5
        }
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: bytes.count + extra + 2))
        guard let input = bytes.baseAddress else {
            out[start] = UInt8(ascii: "\"")
            out[start + 1] = UInt8(ascii: "\"")
            return
        }
        out.withUnsafeMutableBufferPointer { buffer in
            var to = buffer.baseAddress! + start
            to.pointee = UInt8(ascii: "\"")
            to += 1
            if extra == 0 {
                to.update(from: input, count: bytes.count)
                to += bytes.count
            } else {
                for index in 0..<bytes.count {
                    let byte = input[index]
                    guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else {
                        to.pointee = byte
                        to += 1
                        continue
                    }
                    to.pointee = UInt8(ascii: "\\")
                    switch byte {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"): to[1] = byte; to += 2
                    case 0x0A: to[1] = UInt8(ascii: "n"); to += 2
                    case 0x0D: to[1] = UInt8(ascii: "r"); to += 2
                    case 0x09: to[1] = UInt8(ascii: "t"); to += 2
                    default:
                        to[1] = UInt8(ascii: "u"); to[2] = 48; to[3] = 48
                        to[4] = hex[Int(byte >> 4)]; to[5] = hex[Int(byte & 15)]
                        to += 6
                    }
                }
            }
            to.pointee = UInt8(ascii: "\"")
        }
    }

    package static func quoted(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 2)
        appendQuoted(text, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
