/// The platform layer's settings: sessions, the credentials key and logging.
package struct PlatformSettings: Sendable {
    package static let variables = [
        "COMPASS_JWT_SECRET", "COMPASS_JWT_AUDIENCE", "COMPASS_JWT_ISSUER", "CREDENTIALS_KEY", "CREDENTIALS_KEY_PREVIOUS", "LOG_LEVEL",
    ]

    package var jwtSecret: [UInt8]?
    /// When set, a session's `aud` must name it and its `iss` must equal it.
    package var jwtAudience: String?
    package var jwtIssuer: String?
    package var credentialKeys: CredentialKeys?
    package var logLevel: LogLevel

    package static func load(_ read: EnvironmentReader) throws(ConfigError) -> PlatformSettings {
        PlatformSettings(
            jwtSecret: try jwtSecret(read), jwtAudience: read.value("COMPASS_JWT_AUDIENCE"), jwtIssuer: read.value("COMPASS_JWT_ISSUER"),
            credentialKeys: try credentialKeys(read), logLevel: try logLevel(read))
    }

    private static func jwtSecret(_ read: EnvironmentReader) throws(ConfigError) -> [UInt8]? {
        guard let secret = read.value("COMPASS_JWT_SECRET") else { return nil }
        guard secret.utf8.count >= 32 else {
            throw ConfigError(variable: "COMPASS_JWT_SECRET", problem: "must be at least 32 bytes (RFC 7518 section 3.2)")
        }
        return Array(secret.utf8)
    }

    private static func credentialKeys(_ read: EnvironmentReader) throws(ConfigError) -> CredentialKeys? {
        if let current = read.value("CREDENTIALS_KEY") {
            return try CredentialKeys(current: current, previous: read.value("CREDENTIALS_KEY_PREVIOUS"))
        }
        guard read.value("CREDENTIALS_KEY_PREVIOUS") == nil else {
            throw ConfigError(variable: "CREDENTIALS_KEY", problem: "is required when CREDENTIALS_KEY_PREVIOUS is set")
        }
        return nil
    }

    private static func logLevel(_ read: EnvironmentReader) throws(ConfigError) -> LogLevel {
        switch read.value("LOG_LEVEL")?.lowercased() ?? "info" {
        case "debug": .debug
        case "info": .info
        case "warn", "warning": .warn
        case "error": .error
        default: throw ConfigError(variable: "LOG_LEVEL", problem: "must be debug, info, warn or error")
        }
    }

    // MARK: Required values, asked for by the routes that need them

    package func sessionSecret() throws(ConfigError) -> [UInt8] {
        guard let secret = jwtSecret else { throw ConfigError(variable: "COMPASS_JWT_SECRET", problem: "is not set") }
        return secret
    }

    package func credentialCipher() throws(ConfigError) -> CredentialKeys {
        guard let keys = credentialKeys else { throw ConfigError(variable: "CREDENTIALS_KEY", problem: "is not set") }
        return keys
    }
}
