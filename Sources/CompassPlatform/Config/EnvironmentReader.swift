/// A variable of the environment that cannot be used as it is set, or a required one not set.
/// Every layer's settings fail with it; its answer names the variable and never its value.
package struct ConfigError: Swift.Error, Equatable {
    package var variable: String
    package var problem: String
    package var apiError: APIError { .misconfigured(variable, problem) }

    package init(variable: String, problem: String) {
        self.variable = variable
        self.problem = problem
    }
}

package enum LogLevel: Int, Sendable, Comparable {
    case debug, info, warn, error
    package static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// The one read of the environment every layer's settings are parsed from: values trimmed, an
/// empty one unset.
package struct EnvironmentReader: Sendable {
    package let environment: [String: String]

    package init(_ environment: [String: String]) { self.environment = environment }

    package func value(_ name: String) -> String? {
        guard let raw = environment[name]?.trimmed, !raw.isEmpty else { return nil }
        return raw
    }

    /// A whole number within `range`, `fallback` when unset.
    package func whole(
        _ name: String, _ range: ClosedRange<Int>, default fallback: Int, unit: String?,
        problem: String? = nil
    ) throws(ConfigError) -> Int {
        guard let raw = value(name) else { return fallback }
        guard let number = Int(raw), range.contains(number) else {
            throw ConfigError(
                variable: name,
                problem: problem
                    ?? "must be a whole number \(unit.map { "of \($0) " } ?? "")from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// A base URL, when set.
    package func url(_ name: String) throws(ConfigError) -> String? {
        try value(name).map { raw throws(ConfigError) in try Self.baseURL(raw, variable: name) }
    }

    /// An http(s) URL without query or fragment, without trailing slashes.
    package static func baseURL(_ raw: String, variable: String) throws(ConfigError) -> String {
        var text = raw
        while text.hasSuffix("/") { text.removeLast() }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(),
            scheme == "https" || scheme == "http", let host = url.host(), !host.isEmpty,
            url.query() == nil, url.fragment() == nil, !hasWhitespace(text)
        else {
            throw ConfigError(variable: variable, problem: "must be an http(s) URL without query or fragment")
        }
        return text
    }

    /// Whether `text` holds a character with Unicode's White_Space property (as
    /// `Character.isWhitespace` says): ASCII text by its bytes, a tab to a carriage return or a
    /// space (the Character walk cost 400 instructions a character, three URLs at every
    /// process's start), other text by its Characters.
    package static func hasWhitespace(_ text: String) -> Bool {
        guard text.utf8.allSatisfy({ $0 < 0x80 }) else { return text.contains(where: \.isWhitespace) }
        return text.utf8.contains { $0 == 0x20 || (0x09...0x0D).contains($0) }
    }

    /// Digits only, 1 to 32 of them (Meta's app and configuration ids), when set.
    package func digits(_ name: String, problem: String) throws(ConfigError) -> String? {
        guard let raw = value(name) else { return nil }
        guard raw.consists(of: ASCII.isDigit, length: 1...32) else { throw ConfigError(variable: name, problem: problem) }
        return raw
    }
}
