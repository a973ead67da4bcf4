/// `application/x-www-form-urlencoded` pairs, in order, repeated names kept. Malformed
/// percent-escapes are kept as literal text rather than rejected: validation of each value
/// belongs to whoever reads it.
package struct QueryParameters: Sendable, Equatable {
    package private(set) var pairs: [(name: String, value: String)]

    package init(_ pairs: [(name: String, value: String)] = []) { self.pairs = pairs }

    package init(parsing text: some StringProtocol) {
        pairs = []
        for part in text.split(separator: "&", omittingEmptySubsequences: true) {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(pieces[0])
            guard !name.isEmpty else { continue }
            pairs.append((name, pieces.count > 1 ? Self.decode(pieces[1]) : ""))
        }
    }

    package static func == (a: QueryParameters, b: QueryParameters) -> Bool {
        a.pairs.map { "\($0.name)=\($0.value)" } == b.pairs.map { "\($0.name)=\($0.value)" }
    }

    package func values(_ name: String) -> [String] { pairs.filter { $0.name == name }.map(\.value) }

    /// The value when the name appears exactly once; nil when absent or repeated
    /// (a repeated security parameter is ambiguous, so it counts as absent).
    package func single(_ name: String) -> String? {
        let found = values(name)
        return found.count == 1 ? found[0] : nil
    }

    package func contains(_ name: String) -> Bool { pairs.contains { $0.name == name } }

    package mutating func append(_ name: String, _ value: String) { pairs.append((name, value)) }

    /// Encoded for a URL: unreserved characters as they are, everything else percent-encoded.
    package var encoded: String {
        pairs.map { Self.encode($0.name) + "=" + Self.encode($0.value) }.concatenated(separator: "&")
    }

    package static func encode(_ text: String) -> String {
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in text.utf8 {
            if ASCII.isAlphanumeric(byte) || byte == 45 || byte == 46 || byte == 95 || byte == 126 {
                out.append(byte)
            } else {
                out.append(37)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 15)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A URL path percent-decoded (`+` stays a plus sign, as in a path it is one).
    package static func decodePath(_ text: some StringProtocol) -> String {
        decode(String(text).replacing("+", with: "%2B"))
    }

    package static func decode(_ text: some StringProtocol) -> String {
        let bytes = Array(text.utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 43 {
                out.append(32)
            } else if byte == 37, index + 2 < bytes.count,
                let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
            {
                out.append(high << 4 | low)
                index += 2
            } else {
                out.append(byte)
            }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 48...57: b - 48
        case 65...70: b - 55
        case 97...102: b - 87
        default: nil
        }
    }
}
