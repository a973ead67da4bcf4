import ByteScan

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

    /// `bytes` as lower-case hex digits at the end of `out`, written in place by `compass_hex`
    /// (ByteScan: sixteen bytes at a time with SSE2).
    package static func append(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        guard let source = bytes.baseAddress else { return }
        out.append(count: 2 * bytes.count) { cursor in
            compass_hex(source.assumingMemoryBound(to: UInt8.self), bytes.count, cursor.at)
            cursor.at += 2 * bytes.count
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

/// base64url without padding (RFC 4648, section 5), byte by byte: no `Data`, and no generic
/// code left unspecialized across the module boundary, whose first use in a process looks up
/// type metadata by name.
package enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    /// Each byte's value in the alphabet, 0xff for a byte outside it: made from the alphabet in one
    /// pass (a search of it for each of the 256 bytes cost 77,000 instructions of every process
    /// that reads a session).
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xff, count: 256)
        for (value, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(value) }
        return table
    }()

    package static func encode(_ bytes: [UInt8]) -> String {
        let length = (bytes.count * 4 + 2) / 3
        return String(unsafeUninitializedCapacity: length) { out in
            bytes.withUnsafeBufferPointer { input in
                alphabet.withUnsafeBufferPointer { alphabet in
                    func character(_ group: UInt32, _ shift: UInt32) -> UInt8 { alphabet[Int(group >> shift & 63)] }
                    var read = 0
                    var written = 0
                    while read + 3 <= input.count {
                        let group = UInt32(input[read]) << 16 | UInt32(input[read + 1]) << 8 | UInt32(input[read + 2])
                        out[written] = character(group, 18)
                        out[written + 1] = character(group, 12)
                        out[written + 2] = character(group, 6)
                        out[written + 3] = character(group, 0)
                        read += 3
                        written += 4
                    }
                    let rest = input.count - read
                    guard rest > 0 else { return }
                    let group = UInt32(input[read]) << 16 | (rest == 2 ? UInt32(input[read + 1]) << 8 : 0)
                    out[written] = character(group, 18)
                    out[written + 1] = character(group, 12)
                    if rest == 2 { out[written + 2] = character(group, 6) }
                }
            }
            return length
        }
    }

    /// Decodes unpadded (or padded) base64url; nil for any character outside the alphabet, a
    /// length no encoding has, or padding that is not at the end or is more than the length needs.
    package static func decode(_ text: String) -> [UInt8]? {
        text.utf8.withContiguousStorageIfAvailable { decode($0) } ?? decode(Array(text.utf8))
    }

    package static func decode(_ text: Substring) -> [UInt8]? {
        text.utf8.withContiguousStorageIfAvailable { decode($0) } ?? decode(Array(text.utf8))
    }

    private static func decode(_ characters: [UInt8]) -> [UInt8]? {
        characters.withUnsafeBufferPointer { decode($0) }
    }

    private static func decode(_ input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        var end = input.count
        while end > 0 && input[end - 1] == UInt8(ascii: "=") { end -= 1 }
        // 4n, 4n+2 or 4n+3 characters, then at most the padding that completes the last four.
        guard end % 4 != 1, input.count - end <= (4 - end % 4) % 4 else { return nil }
        return values.withUnsafeBufferPointer { values -> [UInt8]? in
            var out = [UInt8]()
            out.reserveCapacity(end / 4 * 3 + 2)
            var group: UInt32 = 0
            for index in 0..<end {
                let value = values[Int(input[index])]
                guard value != 0xff else { return nil }
                group = group << 6 | UInt32(value)
                if index % 4 == 3 {
                    out.append(UInt8(truncatingIfNeeded: group >> 16))
                    out.append(UInt8(truncatingIfNeeded: group >> 8))
                    out.append(UInt8(truncatingIfNeeded: group))
                    group = 0
                }
            }
            switch end % 4 {
            case 2: out.append(UInt8(truncatingIfNeeded: group >> 4))
            case 3:
                out.append(UInt8(truncatingIfNeeded: group >> 10))
                out.append(UInt8(truncatingIfNeeded: group >> 2))
            default: break
            }
            return out
        }
    }
}

/// Standard base64 with its padding (RFC 4648, section 4), as AWS sends a binary body: decoded
/// straight into the array, four characters at a time, each character's bits read from a table
/// of its own place already where they go in the three bytes (one or, no shift), and the text
/// checked once at the end instead of at every character.
package enum Base64 {
    /// For each of the four places of a group, each byte's bits placed in the group's three
    /// bytes as a little-endian word holds them; bit 24 set for a byte outside the alphabet.
    private static let places: [UInt32] = {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var table = [UInt32](repeating: 1 << 24, count: 4 * 256)
        for (value, byte) in alphabet.enumerated() {
            let bits = UInt32(value)
            table[Int(byte)] = bits << 2
            table[256 + Int(byte)] = bits >> 4 | (bits & 0xF) << 12
            table[512 + Int(byte)] = (bits >> 2) << 8 | (bits & 3) << 22
            table[768 + Int(byte)] = bits << 16
        }
        return table
    }()

    /// The bytes of `text`; nil for a length that is not a multiple of four, a character outside
    /// the alphabet, or `=` anywhere but as the last one or two characters. Bits past the last
    /// byte need not be zero (as Foundation reads them).
    package static func decode(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let count = text.count
        guard count % 4 == 0 else { return nil }
        guard count > 0 else { return [] }
        let padding = text[count - 1] != UInt8(ascii: "=") ? 0 : text[count - 2] != UInt8(ascii: "=") ? 1 : 2
        let length = count / 4 * 3 - padding
        var valid = false
        // One byte more than the groups fill: each group is stored as a four-byte word.
        let out = [UInt8](unsafeUninitializedCapacity: count / 4 * 3 + 1) { out, written in
            places.withUnsafeBufferPointer { places in
                guard let source = text.baseAddress, let table = places.baseAddress, let target = out.baseAddress else { return }
                // Every group or-ed together: a byte outside the alphabet sets bit 24.
                var seen: UInt32 = 0
                // The bits of the four characters at `at`, of which the first `characters` are
                // read (the rest are padding).
                func group(_ at: Int, _ characters: Int) -> UInt32 {
                    let first = table[Int(source[at])] | table[256 &+ Int(source[at &+ 1])]
                    let third = characters > 2 ? table[512 &+ Int(source[at &+ 2])] : 0
                    let fourth = characters > 3 ? table[768 &+ Int(source[at &+ 3])] : 0
                    return first | third | fourth
                }
                var read = 0
                var write = 0
                // All but the last four.
                while read &+ 4 < count {
                    let bits = group(read, 4)
                    seen |= bits
                    UnsafeMutableRawPointer(target + write).storeBytes(of: bits.littleEndian, as: UInt32.self)
                    read &+= 4
                    write &+= 3
                }
                // The last four, their padding read as `A` (zero bits), the bytes it stands for
                // not kept.
                let bits = group(read, 4 - padding)
                UnsafeMutableRawPointer(target + write).storeBytes(of: bits.littleEndian, as: UInt32.self)
                valid = (seen | bits) >> 24 == 0
                written = length
            }
        }
        return valid ? out : nil
    }
}
