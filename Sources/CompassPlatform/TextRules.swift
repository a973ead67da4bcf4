#if canImport(Glibc)
    import Glibc
#endif

/// Small checks on the shape of identifiers, without the start-up cost of Regex. On `String` and
/// `Substring` rather than on any `StringProtocol`: a generic body called from another module
/// runs unspecialized, and its first call in a process looks up the type's UTF-8 view and
/// iterator by name.
extension String {
    /// Every UTF-8 byte passes `allowed` and the length in bytes is within `length`.
    package func consists(of allowed: (UInt8) -> Bool, length: ClosedRange<Int>) -> Bool {
        TextShape.consists(utf8, of: allowed, length: length)
    }
}

extension Substring {
    /// Every UTF-8 byte passes `allowed` and the length in bytes is within `length`.
    package func consists(of allowed: (UInt8) -> Bool, length: ClosedRange<Int>) -> Bool {
        TextShape.consists(utf8, of: allowed, length: length)
    }
}

private enum TextShape {
    static func consists(_ bytes: some Sequence<UInt8>, of allowed: (UInt8) -> Bool, length: ClosedRange<Int>) -> Bool {
        var count = 0
        for byte in bytes {
            guard allowed(byte) else { return false }
            count += 1
            if count > length.upperBound { return false }
        }
        return count >= length.lowerBound
    }
}

/// Byte classes. Public and `@inlinable` (the only access level, without library evolution,
/// whose inlinable bodies Swift 6.3 serializes for another module: a `package` one is called):
/// the event path tests every byte of a match key from another module, where a call each cost
/// more than the test.
public enum ASCII {
    @inlinable public static func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }
    @inlinable public static func isLower(_ b: UInt8) -> Bool { b >= 97 && b <= 122 }
    @inlinable public static func isUpper(_ b: UInt8) -> Bool { b >= 65 && b <= 90 }
    @inlinable public static func isAlphanumeric(_ b: UInt8) -> Bool { isDigit(b) || isLower(b) || isUpper(b) }
    @inlinable public static func isHexDigit(_ b: UInt8) -> Bool { isDigit(b) || (97...102).contains(b) || (65...70).contains(b) }
    /// `[A-Za-z0-9_-]`: tenant ids, nonces, key segments.
    @inlinable public static func isIdentifier(_ b: UInt8) -> Bool { isAlphanumeric(b) || b == 95 || b == 45 }
    @inlinable public static func isLowerOrUnderscore(_ b: UInt8) -> Bool { isLower(b) || b == 95 }
    /// Tab to carriage return and space: the whitespace of ASCII text.
    @inlinable public static func isWhitespace(_ b: UInt8) -> Bool { b == 32 || (9...13).contains(b) }

    /// True when every byte is below 0x80 (then the bytes are also valid UTF-8).
    package static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var high: UInt8 = 0
        for byte in bytes { high |= byte }
        return high < 0x80
    }

    /// True when `needle` (ASCII) stands somewhere in `bytes`: each place of its first byte
    /// found by `memchr`, the rest compared there.
    package static func contains(_ bytes: UnsafeBufferPointer<UInt8>, _ needle: StaticString) -> Bool {
        let count = needle.utf8CodeUnitCount
        guard count > 0 else { return true }
        guard let base = bytes.baseAddress, bytes.count >= count else { return false }
        let first = Int32(needle.utf8Start[0])
        var start = 0
        while start + count <= bytes.count {
            guard let found = memchr(base + start, first, bytes.count - count + 1 - start) else { return false }
            let at = UnsafePointer(found.assumingMemoryBound(to: UInt8.self)) - base
            if memcmp(base + at + 1, needle.utf8Start + 1, count - 1) == 0 { return true }
            start = at + 1
        }
        return false
    }

    /// True when `bytes` begins with `prefix` (ASCII).
    package static func hasPrefix(_ bytes: UnsafeBufferPointer<UInt8>, _ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard bytes.count >= count else { return false }
        guard count > 0, let base = bytes.baseAddress else { return true }
        return memcmp(base, prefix.utf8Start, count) == 0
    }

    /// True when `a` and `b` hold the same bytes.
    package static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        guard let left = a.baseAddress, let right = b.baseAddress else { return true }
        return memcmp(left, right, a.count) == 0
    }

    /// True when `a` comes before `b` in byte order (as `lexicographicallyPrecedes` has it).
    package static func precedes(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        let common = min(a.count, b.count)
        if common > 0, let left = a.baseAddress, let right = b.baseAddress {
            let order = memcmp(left, right, common)
            if order != 0 { return order < 0 }
        }
        return a.count < b.count
    }
}

extension Array where Element == UInt8 {
    /// `bytes` appended with each upper-case ASCII letter made lower-case (other bytes as they
    /// are): copied, then changed in place, instead of through a lazy map's generic walk.
    package mutating func append(lowercasedASCII bytes: UnsafeBufferPointer<UInt8>) {
        let start = count
        append(contentsOf: bytes)
        withUnsafeMutableBufferPointer { out in
            for index in start..<out.count where ASCII.isUpper(out[index]) { out[index] |= 0x20 }
        }
    }
}

/// One segment of a storage key (and of an etcd namespace in `STORE_URL`): `[A-Za-z0-9_-]{1,255}`,
/// safe as a file name and an etcd key alike.
package enum KeySegment {
    package static func isValid(_ segment: String) -> Bool { segment.consists(of: ASCII.isIdentifier, length: 1...255) }
    package static func isValid(_ segment: Substring) -> Bool { segment.consists(of: ASCII.isIdentifier, length: 1...255) }
}

extension String {
    /// `v26.0`: a Graph API version.
    package var isGraphVersion: Bool {
        guard hasPrefix("v") else { return false }
        let parts = dropFirst().split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 2 && parts[0].consists(of: ASCII.isDigit, length: 1...3)
            && parts[1].consists(of: ASCII.isDigit, length: 1...2)
    }
}

extension String {
    /// Without leading and trailing ASCII spaces and tabs.
    package var trimmed: String { self[...].trimmed }
}

extension Substring {
    /// Without leading and trailing ASCII spaces and tabs: Characters that are a space or a tab,
    /// found byte by byte. A blank next to a byte outside ASCII may be one Character with it (a
    /// space and the combining mark after it); there the Characters decide.
    package var trimmed: String {
        let bytes = utf8
        let isBlank: (UInt8) -> Bool = { $0 == 32 || $0 == 9 }
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end && isBlank(bytes[start]) { start = bytes.index(after: start) }
        while end > start && isBlank(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
        let joinsAtStart = start != bytes.startIndex && start != bytes.endIndex && bytes[start] >= 0x80
        let joinsAtEnd = end != bytes.endIndex && end != bytes.startIndex && bytes[bytes.index(before: end)] >= 0x80
        guard joinsAtStart || joinsAtEnd else { return String(self[start..<end]) }
        let isBlankCharacter: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isBlankCharacter($0) }), let last = lastIndex(where: { !isBlankCharacter($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}

extension [String] {
    /// The strings with `separator` between them, as `joined(separator:)` gives them, without its
    /// generic body: the standard library runs it unspecialized, and its first call in a process
    /// looks up the collection's index types by name (0.2 million instructions of connect's start).
    package func concatenated(separator: String) -> String {
        var out = ""
        for (index, part) in enumerated() {
            if index > 0 { out += separator }
            out += part
        }
        return out
    }
}

extension StringProtocol {
    package func equalsIgnoringCase(_ other: some StringProtocol) -> Bool { lowercased() == other.lowercased() }
}

extension String {
    /// Without CR and LF (as bytes, which in UTF-8 are those scalars and nothing else: `"\r\n"`
    /// is one Character), so it cannot end a header line.
    package var withoutLineBreaks: String {
        guard utf8.contains(where: { $0 == 13 || $0 == 10 }) else { return self }
        return String(decoding: utf8.filter { $0 != 13 && $0 != 10 }, as: UTF8.self)
    }
}
