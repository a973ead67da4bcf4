import CompassPlatform

/// Meta's `user_data` rules (META-API.md): each hashed key normalized, then SHA-256 in lower-case
/// hex; a value that already is a SHA-256 digest passes through, never hashed twice; arrays
/// de-duplicated in order. Unhashed keys pass as given (an IP must parse).
package enum UserDataNormalizer {
    package static let hashedKeys: Set<String> = [
        "em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id",
        "f5first", "f5last", "fi", "dobd", "dobm", "doby",
    ]
    package static let plainKeys: Set<String> = [
        "client_ip_address", "client_user_agent", "fbc", "fbp", "subscription_id", "fb_login_id", "lead_id",
        "anon_id", "madid", "page_id", "page_scoped_user_id", "ctwa_clid", "ig_account_id", "ig_sid", "app_user_id",
        "whatsapp_business_account_id",
    ]
    /// Plain keys Meta takes as ids that pipelines send as JSON numbers (Segment's integers).
    package static let numericIdKeys: Set<String> = ["lead_id", "fb_login_id", "subscription_id", "whatsapp_business_account_id"]

    /// Why a value was dropped; the event goes on without it.
    package struct Problem: Error, Equatable {
        package var key: String
        package var message: String
    }

    /// The normalized (not yet hashed) form of one value by its key's `UserDataRule`, or a
    /// problem. Digests pass as they are.
    package static func normalize(_ key: String, _ raw: String) -> Result<String, Problem> {
        guard let rule = UserDataRule(key: key) else { return .failure(Problem(key: key, message: "is not a user_data key")) }
        var trimmed = raw.trimmingWhitespace
        var out: [UInt8] = []
        out.reserveCapacity(trimmed.utf8.count)
        let done = trimmed.withUTF8 { rule.normalize($0, into: &out) }
        return done ? .success(String(decoding: out, as: UTF8.self)) : .failure(Problem(key: key, message: rule.problem))
    }

    package static func hash(_ normalized: String) -> String {
        Hex.isSHA256Digest(normalized) ? normalized : Hex.encode(Crypto.sha256(normalized))
    }

    /// An IPv4 or IPv6 address as written (RFC 791 dotted quad, RFC 4291 text forms).
    package static func isIPAddress(_ text: String) -> Bool {
        isIPv4(text) || isIPv6(text)
    }

    /// A dotted quad: four parts of one to three digits, each 0 to 255, no leading zero.
    package static func isIPv4(_ text: some StringProtocol) -> Bool {
        var text = String(text)
        return text.withUTF8 { isIPv4($0) }
    }

    package static func isIPv4(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var parts = 0
        var value = 0
        var digits = 0
        var first: UInt8 = 0
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                guard digits > 0 else { return false }
                parts += 1
                (value, digits) = (0, 0)
                continue
            }
            guard ASCII.isDigit(byte), digits < 3 else { return false }
            if digits == 0 { first = byte } else if first == UInt8(ascii: "0") { return false }
            value = value * 10 + Int(byte - 48)
            guard value <= 255 else { return false }
            digits += 1
        }
        return parts == 3 && digits > 0
    }

    package static func isIPv6(_ text: String) -> Bool {
        var address = Substring(text)
        if let percent = address.firstIndex(of: "%") { address = address[..<percent] }  // zone id
        guard address.contains(":"), address.utf8.count <= 45 else { return false }
        let halves = address.components(separatedBy: "::")
        guard halves.count <= 2 else { return false }
        var groups = 0
        for (index, half) in halves.enumerated() where !half.isEmpty {
            let pieces = half.split(separator: ":", omittingEmptySubsequences: false)
            for (position, piece) in pieces.enumerated() {
                let isLast = index == halves.count - 1 && position == pieces.count - 1
                if isLast && piece.contains(".") {
                    guard isIPv4(piece) else { return false }
                    groups += 2
                } else {
                    guard piece.consists(of: { ASCII.isDigit($0) || (97...102).contains($0) || (65...70).contains($0) }, length: 1...4)
                    else { return false }
                    groups += 1
                }
            }
        }
        return halves.count == 2 ? groups < 8 : groups == 8
    }
}

extension String {
    /// Without leading and trailing Unicode whitespace.
    package var trimmingWhitespace: String {
        // Fast path: the ends are ASCII (whitespace there is tab to carriage return and space).
        let bytes = utf8
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, ASCII.isWhitespace(bytes[start]) { start = bytes.index(after: start) }
        while start < end, ASCII.isWhitespace(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
        if start == end { return "" }
        if bytes[start] < 0x80, bytes[bytes.index(before: end)] < 0x80 {
            return start == bytes.startIndex && end == bytes.endIndex ? self : String(self[start..<end])
        }
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}

/// What a hashed key's value is before any rule applies: a SHA-256 digest (64 hex digits), a
/// value hashed by Meta's Parameter Builder library (`facebook/capi-param-builder`,
/// `getNormalizedAndHashedPII`: the lower-case digest, a dot, and a suffix of two letters naming
/// the library's language or eight base64url characters), text that only looks hashed (hex
/// digits, a dot and something else; an MD5 the library would also pass), or plain text to
/// normalize and hash. One rule for both event paths.
package enum HashedInput: Equatable {
    case digest
    /// Passed to Meta as it is, the digest lower-cased: never hashed again.
    case paramBuilder(String)
    case malformed
    case plain

    /// The Parameter Builder's language tokens (its `SUPPORTED_PARAM_BUILDER_LANGUAGES_TOKEN`).
    static let languageTokens: Set<String> = ["AQ", "Ag", "Aw", "BA", "BQ", "Bg"]

    package init(_ raw: some Collection<UInt8>) {
        var bytes = Array(raw)
        while let last = bytes.last, ASCII.isWhitespace(last) { bytes.removeLast() }
        while let first = bytes.first, ASCII.isWhitespace(first) { bytes.removeFirst() }
        let hexCount = bytes.prefix { ASCII.isHexDigit($0) }.count
        if hexCount == bytes.count {
            self = hexCount == 64 ? .digest : .plain
            return
        }
        guard hexCount >= 32, bytes[hexCount] == UInt8(ascii: ".") else {
            self = .plain
            return
        }
        let suffix = String(decoding: bytes[(hexCount + 1)...], as: UTF8.self)
        let suffixIsTheLibrarys =
            Self.languageTokens.contains(suffix)
            || (suffix.utf8.count == 8 && suffix.utf8.allSatisfy { ASCII.isAlphanumeric($0) || $0 == 45 || $0 == 95 })
        guard hexCount == 64, suffixIsTheLibrarys else {
            self = .malformed
            return
        }
        self = .paramBuilder(String(decoding: bytes[..<64].map { ASCII.isUpper($0) ? $0 | 0x20 : $0 }, as: UTF8.self) + "." + suffix)
    }
}
