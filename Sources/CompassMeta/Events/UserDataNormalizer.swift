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

    /// The normalized (not yet hashed) form of one value, or a problem. Digests pass as they are.
    package static func normalize(_ key: String, _ raw: String) -> Result<String, Problem> {
        let trimmed = raw.trimmingWhitespace
        let lowered = trimmed.lowercased()
        if Hex.isSHA256Digest(lowered) { return .success(lowered) }
        func fail(_ message: String) -> Result<String, Problem> { .failure(Problem(key: key, message: message)) }
        switch key {
        case "em":
            guard isEmail(lowered) else { return fail("is not an email address") }
            return .success(lowered)
        case "ph":
            return phone(trimmed).map { .success($0) } ?? fail("is not a phone number with its country code")
        case "fn", "ln":
            let letters = lettersOnly(lowered)
            return letters.isEmpty ? fail("has no letters") : .success(letters)
        case "ge":
            switch lettersOnly(lowered) {
            case "f", "female", "w", "woman": return .success("f")
            case "m", "male", "man": return .success("m")
            default: return fail("must be f or m")
            }
        case "db":
            return dateOfBirth(trimmed).map { .success($0) } ?? fail("is not an unambiguous date of birth")
        case "ct":
            let letters = lettersOnly(lowered)
            return letters.isEmpty ? fail("has no letters") : .success(letters)
        case "st":
            let letters = lettersOnly(lowered)
            if letters.isEmpty { return fail("has no letters") }
            return .success(GeoCodes.usStates[letters] ?? letters)
        case "zp":
            // A US ZIP+4 (94025-1234, 94025 1234, 940251234) is its first five digits.
            let digits = lowered.unicodeScalars.filter { $0 != " " && $0 != "-" }
            if digits.count == 9, digits.allSatisfy({ ("0"..."9").contains($0) }),
                lowered.unicodeScalars.prefix(5).allSatisfy({ ("0"..."9").contains($0) })
            {
                return .success(String(String.UnicodeScalarView(digits.prefix(5))))
            }
            var compact = String(lowered.unicodeScalars.filter { !$0.properties.isWhitespace })
            if let dash = compact.firstIndex(of: "-") { compact = String(compact[..<dash]) }
            return compact.isEmpty ? fail("is empty") : .success(compact)
        case "f5first", "f5last":
            // The first five letters of the name, by the name rule (letters only, lower case).
            let letters = lettersOnly(lowered)
            return letters.isEmpty ? fail("has no letters") : .success(String(letters.prefix(5)))
        case "fi":
            let letters = lettersOnly(lowered)
            return letters.isEmpty ? fail("has no letters") : .success(String(letters.prefix(1)))
        case "dobd", "dobm":
            let limit = key == "dobd" ? 31 : 12
            guard trimmed.count <= 2, let number = Int(trimmed), (1...limit).contains(number) else {
                return fail(key == "dobd" ? "is not a day of the month (1 to 31)" : "is not a month (1 to 12)")
            }
            return .success(two(number))
        case "doby":
            guard trimmed.count == 4, trimmed.allSatisfy(\.isASCII), let year = Int(trimmed), (1900...2100).contains(year) else {
                return fail("is not a four-digit year")
            }
            return .success(trimmed)
        case "country":
            let letters = lettersOnly(lowered)
            if letters.count == 2, GeoCodes.alpha2.contains(letters) { return .success(letters) }
            if let code = GeoCodes.countries[asciiFolded(letters)] { return .success(code) }
            return fail("is not an ISO 3166 country")
        case "external_id":
            return trimmed.isEmpty ? fail("is empty") : .success(trimmed)
        default:
            return fail("is not a user_data key")
        }
    }

    package static func hash(_ normalized: String) -> String {
        Hex.isSHA256Digest(normalized) ? normalized : Hex.encode(Crypto.sha256(normalized))
    }

    // MARK: Rules

    /// `.+@.+\..+`, as Meta and its SDK check.
    package static func isEmail(_ text: String) -> Bool {
        guard let at = text.firstIndex(of: "@"), at != text.startIndex else { return false }
        let domain = text[text.index(after: at)...]
        guard let dot = domain.lastIndex(of: "."), dot != domain.startIndex else { return false }
        return domain.index(after: dot) != domain.endIndex && !text.contains(" ")
    }

    /// Digits only: spaces, `+`, `-`, `(`, `)`, `.` and `/` dropped, letters refused, leading
    /// zeros (an international prefix) removed. 7 to 15 digits, as E.164 allows.
    /// Digits only, as Meta says: symbols and letters removed (`+1 (650) 555-1212 ext` is
    /// 16505551212), then leading zeros; 7 to 15 digits, else not a phone number.
    package static func phone(_ text: String) -> String? {
        // An ASCII digit is one UTF-8 byte, and no byte of a longer character is one.
        var digits: [UInt8] = []
        for byte in text.utf8 where ASCII.isDigit(byte) && !(digits.isEmpty && byte == 48) { digits.append(byte) }
        return (7...15).contains(digits.count) ? String(decoding: digits, as: UTF8.self) : nil
    }

    /// `YYYYMMDD` from `YYYYMMDD`, `YYYY-MM-DD` (or `/`, `.`), or `MM/DD/YYYY` and `DD/MM/YYYY`
    /// when only one reading is a real date. A real calendar date between 1900 and 2100.
    package static func dateOfBirth(_ text: String) -> String? {
        let parts = text.split(whereSeparator: { "-/. ".contains($0) }).map(String.init)
        var year = 0
        var month = 0
        var day = 0
        if parts.count == 1, parts[0].consists(of: ASCII.isDigit, length: 8...8), let all = Int(parts[0]) {
            (year, month, day) = (all / 10000, all / 100 % 100, all % 100)
        } else if parts.count == 3, parts.allSatisfy({ $0.consists(of: ASCII.isDigit, length: 1...4) }),
            let a = Int(parts[0]), let b = Int(parts[1]), let c = Int(parts[2])
        {
            if parts[0].count == 4 {
                (year, month, day) = (a, b, c)
            } else if parts[2].count == 4 {
                let monthFirst = isDate(c, a, b)
                let dayFirst = isDate(c, b, a)
                guard monthFirst != dayFirst || a == b else { return nil }
                (year, month, day) = monthFirst ? (c, a, b) : (c, b, a)
            } else {
                return nil
            }
        } else {
            return nil
        }
        guard isDate(year, month, day) else { return nil }
        return String(format4(year)) + two(month) + two(day)
    }

    private static func isDate(_ year: Int, _ month: Int, _ day: Int) -> Bool {
        guard (1900...2100).contains(year), (1...12).contains(month), day >= 1 else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        return day <= days
    }

    private static func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
    private static func format4(_ n: Int) -> String { String(n) }

    /// Letters of any script, lower-cased; digits, spaces and punctuation removed.
    package static func lettersOnly(_ text: String) -> String {
        // ASCII text (most names and cities): its letters are A-Z and a-z, lower-cased by byte.
        if text.utf8.allSatisfy({ $0 < 0x80 }) {
            var letters: [UInt8] = []
            letters.reserveCapacity(text.utf8.count)
            for byte in text.utf8 where ASCII.isLower(byte) || ASCII.isUpper(byte) { letters.append(byte | 0x20) }
            return String(decoding: letters, as: UTF8.self)
        }
        return String(text.unicodeScalars.filter { $0.properties.isAlphabetic }.map { Character($0) }).lowercased()
    }

    /// Latin letters without their accents, for matching country names (`Côte d'Ivoire`).
    private static func asciiFolded(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.isASCII {
                out.unicodeScalars.append(scalar)
                continue
            }
            let base: String? =
                switch scalar {
                case "à", "á", "â", "ã", "ä", "å": "a"
                case "ç": "c"
                case "è", "é", "ê", "ë": "e"
                case "ì", "í", "î", "ï": "i"
                case "ñ": "n"
                case "ò", "ó", "ô", "õ", "ö", "ø": "o"
                case "ù", "ú", "û", "ü": "u"
                case "ý", "ÿ": "y"
                default: nil
                }
            out += base ?? ""
        }
        return out
    }

    /// An IPv4 or IPv6 address as written (RFC 791 dotted quad, RFC 4291 text forms).
    package static func isIPAddress(_ text: String) -> Bool {
        isIPv4(text) || isIPv6(text)
    }

    package static func isIPv4(_ text: some StringProtocol) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4
            && parts.allSatisfy { part in
                part.consists(of: ASCII.isDigit, length: 1...3) && Int(part)! <= 255 && !(part.count > 1 && part.hasPrefix("0"))
            }
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
