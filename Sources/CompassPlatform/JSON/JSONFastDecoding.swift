/// A record type with a reader of its own for the JSON its synthesized `Decodable` conformance
/// reads: `JSON.decode` (and the record store) parse the text once with `JSONParser` and ask
/// the reader first, without Foundation's `JSONDecoder`, whose first use in a process builds type
/// metadata, a calendar and time zone tables (a few percent of a short-lived handler's time).
///
/// The reader takes only what it is sure of and reads it as `Decodable` would; for anything else
/// it answers nil and the text goes through `JSONDecoder`, whose value or error stands. So it
/// never changes what a record decodes to, only how fast (`FastDecodingTests` compares the two
/// on records and on every mutation of them).
package protocol JSONFastDecodable: Decodable {
    init?(fastJSON: JSONValue)
}

/// The members of a JSON object read as synthesized `Decodable` reads them: a required member
/// must be there and of its type (not null), an optional one may be absent or null. Any other
/// shape declines (`Decline`), and the caller answers nil.
package struct JSONFields {
    package struct Decline: Error {}

    private let members: [String: JSONValue]

    package init(_ value: JSONValue) throws(Decline) {
        guard let members = value.object else { throw Decline() }
        self.members = members
    }

    private func present(_ key: String) -> JSONValue? {
        guard let value = members[key], value != .null else { return nil }
        return value
    }

    package func string(_ key: String) throws(Decline) -> String {
        guard let value = present(key)?.string else { throw Decline() }
        return value
    }

    package func optionalString(_ key: String) throws(Decline) -> String? {
        guard let value = present(key) else { return nil }
        guard let text = value.string else { throw Decline() }
        return text
    }

    package func strings(_ key: String) throws(Decline) -> [String] {
        guard let items = present(key)?.array else { throw Decline() }
        var out: [String] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard let text = item.string else { throw Decline() }
            out.append(text)
        }
        return out
    }

    package func optionalInt(_ key: String) throws(Decline) -> Int? {
        guard let value = present(key) else { return nil }
        guard case .int(let number) = value else { throw Decline() }
        return Int(number)
    }

    package func date(_ key: String) throws(Decline) -> Date {
        guard let text = present(key)?.string, let date = JSONFields.date(iso8601: text) else { throw Decline() }
        return date
    }

    package func optionalDate(_ key: String) throws(Decline) -> Date? {
        guard present(key) != nil else { return nil }
        return try date(key)
    }

    package func object<T: JSONFastDecodable>(_ key: String, _ type: T.Type) throws(Decline) -> T {
        guard let value = present(key), let decoded = T(fastJSON: value) else { throw Decline() }
        return decoded
    }

    package func optionalObject<T: JSONFastDecodable>(_ key: String, _ type: T.Type) throws(Decline) -> T? {
        guard present(key) != nil else { return nil }
        return try object(key, type)
    }

    package func objects<T: JSONFastDecodable>(_ key: String, _ type: T.Type) throws(Decline) -> [T] {
        guard let items = present(key)?.array else { throw Decline() }
        var out: [T] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard let decoded = T(fastJSON: item) else { throw Decline() }
            out.append(decoded)
        }
        return out
    }

    package func value<T: RawRepresentable>(_ key: String, _ type: T.Type) throws(Decline) -> T where T.RawValue == String {
        guard let value = T(rawValue: try string(key)) else { throw Decline() }
        return value
    }

    /// `2026-11-28T03:26:50Z`, the form `JSON.encoder()` writes dates in (whole seconds, UTC);
    /// nil for any other text, which is left to `JSONDecoder`.
    package static func date(iso8601 text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 20, bytes[4] == 45, bytes[7] == 45, bytes[10] == 84, bytes[13] == 58, bytes[16] == 58, bytes[19] == 90 else {
            return nil
        }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                guard ASCII.isDigit(bytes[index]) else { return nil }
                value = value * 10 + Int(bytes[index] - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19),
            year >= 1970, (1...12).contains(month), hour < 24, minute < 60, second < 60
        else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...monthDays[month - 1]).contains(day) else { return nil }
        // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
        let y = month <= 2 ? year - 1 : year
        let era = y / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + hour * 3_600 + minute * 60 + second))
    }
}
