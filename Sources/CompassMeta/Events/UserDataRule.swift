import CompassPlatform

/// Meta's normalization rule for one hashed `user_data` key (META-API.md, "user_data"), written
/// once over the value's UTF-8 bytes. Both event paths call it: `UserDataNormalizer.normalize`
/// (the general path, any text) and `EventFastPath` (ASCII read straight from the request). The
/// bytes come trimmed; ASCII is handled byte by byte, other text by Unicode's letters and case.
package enum UserDataRule: Sendable, Equatable {
    case email, phone, name, gender, dateOfBirth, city, state, zip, firstFive, initial, day, month, year, country, externalId

    package init?(key: String) {
        switch key {
        case "em": self = .email
        case "ph": self = .phone
        case "fn", "ln": self = .name
        case "ge": self = .gender
        case "db": self = .dateOfBirth
        case "ct": self = .city
        case "st": self = .state
        case "zp": self = .zip
        case "f5first", "f5last": self = .firstFive
        case "fi": self = .initial
        case "dobd": self = .day
        case "dobm": self = .month
        case "doby": self = .year
        case "country": self = .country
        case "external_id": self = .externalId
        default: return nil
        }
    }

    /// Why a value this rule refuses is left out of the event.
    package var problem: String {
        switch self {
        case .email: "is not an email address"
        case .phone: "is not a phone number with its country code"
        case .name, .city, .state, .firstFive, .initial: "has no letters"
        case .gender: "must be f or m"
        case .dateOfBirth: "is not an unambiguous date of birth"
        case .zip, .externalId: "is empty"
        case .day: "is not a day of the month (1 to 31)"
        case .month: "is not a month (1 to 12)"
        case .year: "is not a four-digit year"
        case .country: "is not an ISO 3166 country"
        }
    }

    /// The normalized (not yet hashed) value of `bytes` appended to `out`, or false when the rule
    /// refuses it (`out` then holds nothing of it). A SHA-256 digest passes as it is, lower-cased.
    package func normalize(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) -> Bool {
        let start = out.count
        if bytes.count == 64 && bytes.allSatisfy(ASCII.isHexDigit) {
            out.append(lowercasedASCII: bytes)
            return true
        }
        let done = apply(bytes, ascii: ASCII.isASCII(bytes), into: &out)
        if !done { out.removeSubrange(start...) }
        return done
    }

    private func apply(_ bytes: UnsafeBufferPointer<UInt8>, ascii: Bool, into out: inout [UInt8]) -> Bool {
        let start = out.count
        switch self {
        case .email:
            // `.+@.+\..+` without spaces, lower-cased (as Meta and its SDK check).
            guard let at = bytes.firstIndex(of: UInt8(ascii: "@")), at != bytes.startIndex, !bytes.contains(32) else { return false }
            let domain = bytes[(at + 1)...]
            guard let dot = domain.lastIndex(of: UInt8(ascii: ".")), dot != domain.startIndex, dot + 1 != domain.endIndex else {
                return false
            }
            Self.appendLowered(bytes, ascii: ascii, to: &out)
        case .phone:
            // Digits only (symbols and letters removed), then leading zeros; 7 to 15 digits, as
            // E.164 allows. An ASCII digit is one UTF-8 byte, and no byte of a longer character is one.
            for byte in bytes where ASCII.isDigit(byte) && !(out.count == start && byte == 48) { out.append(byte) }
            return (7...15).contains(out.count - start)
        case .name, .city:
            return Self.appendLetters(bytes, ascii: ascii, to: &out)
        case .firstFive, .initial:
            guard Self.appendLetters(bytes, ascii: ascii, to: &out) else { return false }
            // Letters of any script: cut by characters, not bytes.
            let letters = String(decoding: out[start...], as: UTF8.self)
            out.removeSubrange(start...)
            out.append(contentsOf: letters.prefix(self == .initial ? 1 : 5).utf8)
        case .gender:
            guard Self.appendLetters(bytes, ascii: ascii, to: &out) else { return false }
            let letters = String(decoding: out[start...], as: UTF8.self)
            out.removeSubrange(start...)
            switch letters {
            case "f", "female", "w", "woman": out.append(UInt8(ascii: "f"))
            case "m", "male", "man": out.append(UInt8(ascii: "m"))
            default: return false
            }
        case .state:
            guard Self.appendLetters(bytes, ascii: ascii, to: &out) else { return false }
            // Every name the table holds is longer than two bytes: two letters are looked up in vain.
            if out.count - start > 2, let code = GeoCodes.usStates[String(decoding: out[start...], as: UTF8.self)] {
                out.removeSubrange(start...)
                out.append(contentsOf: code.utf8)
            }
        case .country:
            guard Self.appendLetters(bytes, ascii: ascii, to: &out) else { return false }
            if out.count - start == 2, Self.isAlpha2(out[start], out[start + 1]) { return true }
            let letters = String(decoding: out[start...], as: UTF8.self)
            out.removeSubrange(start...)
            guard let code = GeoCodes.countries[Self.asciiFolded(letters)] else { return false }
            out.append(contentsOf: code.utf8)
        case .zip:
            return Self.appendZip(bytes, ascii: ascii, to: &out)
        case .dateOfBirth, .day, .month, .year:
            guard let date = datePart(String(decoding: bytes, as: UTF8.self)) else { return false }
            out.append(contentsOf: date.utf8)
        case .externalId:
            guard !bytes.isEmpty else { return false }
            out.append(contentsOf: bytes)
        }
        return true
    }

    /// Whether the two bytes are a `GeoCodes.alpha2` code: a table of every pair of lower-case
    /// letters, made from the set once, instead of a String made and hashed for each country.
    static func isAlpha2(_ first: UInt8, _ second: UInt8) -> Bool {
        guard ASCII.isLower(first), ASCII.isLower(second) else { return false }
        return alpha2Pairs[Int(first - 97) * 26 + Int(second - 97)]
    }

    private static let alpha2Pairs: [Bool] = (0..<676).map { pair in
        GeoCodes.alpha2.contains(String(decoding: [UInt8(97 + pair / 26), UInt8(97 + pair % 26)], as: UTF8.self))
    }

    private static func lower(_ byte: UInt8) -> UInt8 { ASCII.isUpper(byte) ? byte | 0x20 : byte }

    private static func appendLowered(_ bytes: UnsafeBufferPointer<UInt8>, ascii: Bool, to out: inout [UInt8]) {
        if ascii {
            out.append(lowercasedASCII: bytes)
        } else {
            out.append(contentsOf: String(decoding: bytes, as: UTF8.self).lowercased().utf8)
        }
    }

    /// Letters of any script, lower-cased; digits, spaces and punctuation removed. False when
    /// none is left.
    private static func appendLetters(_ bytes: UnsafeBufferPointer<UInt8>, ascii: Bool, to out: inout [UInt8]) -> Bool {
        let start = out.count
        if ascii {
            for byte in bytes where ASCII.isLower(byte) || ASCII.isUpper(byte) { out.append(byte | 0x20) }
        } else {
            // Lower-cased first: a capital's lower case may be a letter and a mark (`İ`).
            let lowered = String(decoding: bytes, as: UTF8.self).lowercased()
            let letters = String(String.UnicodeScalarView(lowered.unicodeScalars.filter { $0.properties.isAlphabetic }))
            out.append(contentsOf: letters.lowercased().utf8)
        }
        return out.count > start
    }

    /// A US ZIP+4 (94025-1234, 94025 1234, 940251234) is its first five digits; any other code is
    /// lower-cased without whitespace and cut at its first `-`. False when nothing is left.
    private static func appendZip(_ bytes: UnsafeBufferPointer<UInt8>, ascii: Bool, to out: inout [UInt8]) -> Bool {
        let start = out.count
        let kept = bytes.lazy.filter { $0 != 32 && $0 != 45 }
        if kept.count == 9, kept.allSatisfy(ASCII.isDigit), bytes.prefix(5).allSatisfy(ASCII.isDigit) {
            out.append(contentsOf: kept.prefix(5))
            return true
        }
        if ascii {
            for byte in bytes where !ASCII.isWhitespace(byte) {
                if byte == 45 { break }
                out.append(lower(byte))
            }
        } else {
            let lowered = String(decoding: bytes, as: UTF8.self).lowercased()
            for scalar in lowered.unicodeScalars where !scalar.properties.isWhitespace {
                if scalar == "-" { break }
                out.append(contentsOf: String(scalar).utf8)
            }
        }
        return out.count > start
    }

    /// The date rules' value of `text`, or nil.
    private func datePart(_ text: String) -> String? {
        switch self {
        case .dateOfBirth:
            return Self.dateOfBirth(text)
        case .day, .month:
            guard text.utf8.count <= 2, let number = Int(text), (1...(self == .day ? 31 : 12)).contains(number) else { return nil }
            return Self.two(number)
        default:
            guard text.consists(of: ASCII.isDigit, length: 4...4), let year = Int(text), (1900...2100).contains(year) else { return nil }
            return text
        }
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
        return String(year) + two(month) + two(day)
    }

    private static func isDate(_ year: Int, _ month: Int, _ day: Int) -> Bool {
        guard (1900...2100).contains(year), (1...12).contains(month), day >= 1 else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        return day <= days
    }

    private static func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

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
}
