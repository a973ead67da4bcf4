/// Hex and base64url, the two text forms of bytes this product speaks.
package enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Bytes in an array (digests, random bytes: nearly every caller), without the generic
    /// sequence walk, which across the module boundary runs unspecialized.
    package static func encode(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            bytes.withUnsafeBufferPointer { input in
                for (index, byte) in input.enumerated() {
                    out[2 * index] = digits[Int(byte >> 4)]
                    out[2 * index + 1] = digits[Int(byte & 0x0f)]
                }
            }
            return bytes.count * 2
        }
    }

    /// Each byte's two digits as one little-endian word: one load and one store a byte.
    private static let pairs: [UInt16] = (0...255).map { byte in
        UInt16(digits[byte >> 4]) | UInt16(digits[byte & 0x0f]) << 8
    }

    /// `bytes` as lower-case hex digits at the end of `out`: written on the stack, appended
    /// in one copy.
    package static func append(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        pairs.withUnsafeBufferPointer { pairs in
            withUnsafeTemporaryAllocation(of: UInt16.self, capacity: bytes.count) { buffer in
                guard let target = buffer.baseAddress else { return }
                for index in 0..<bytes.count { (target + index).pointee = pairs[Int(bytes[index])] }
                out.append(contentsOf: UnsafeRawBufferPointer(buffer))
            }
        }
    }

    package static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    package static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var index = 0
        while index < chars.count {
            guard let high = value(chars[index]), let low = value(chars[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    /// True for exactly 64 hexadecimal characters: the shape of a SHA-256 digest.
    package static func isSHA256Digest(_ text: some StringProtocol) -> Bool {
        var count = 0
        for char in text.utf8 {
            guard value(char) != nil else { return false }
            count += 1
            if count > 64 { return false }
        }
        return count == 64
    }

    private static func value(_ char: UInt8) -> UInt8? {
        switch char {
        case 48...57: char - 48
        case 97...102: char - 87
        case 65...70: char - 55
        default: nil
        }
    }
}

package enum Base64URL {
    package static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacing("+", with: "-").replacing("/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    /// Decodes unpadded (or padded) base64url; nil for any character outside the alphabet.
    package static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var standard = [UInt8]()
        standard.reserveCapacity(text.utf8.count + 3)
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
        guard let data = Data(base64Encoded: Data(standard)) else { return nil }
        return Array(data)
    }
}
