import CompassPlatform

/// The Meta layer's settings: the app, the Graph API and its dialog, the permissions asked
/// for, and what every events request carries.
package struct MetaSettings: Sendable {
    package struct App: Sendable {
        package var id: String
        package var secret: String
    }

    package static let defaultAPIVersion = "v26.0"
    /// `partner_agent` on every events request when META_PARTNER_AGENT is not set.
    package static let defaultPartnerAgent = "compass_1_0"

    package static let variables = [
        "META_APP_ID", "META_APP_SECRET", "META_API_VERSION", "META_GRAPH_URL", "META_DIALOG_URL", "META_SCOPES", "META_TIMEOUT_MS",
        "OAUTH_REDIRECT_BASE_URL", "META_PARTNER_AGENT", "META_LOGIN_CONFIG_ID",
    ]

    package var appID: String?
    package var appSecret: String?
    package var apiVersion: String
    package var graphURL: String
    package var dialogURL: String
    package var scopes: [String]
    package var redirectBaseURL: String?
    package var timeoutMilliseconds: Int
    /// `partner_agent` on every events request: `[partner]_[major]_[minor]`, as Meta documents it.
    package var partnerAgent: String
    /// The Dataset Quality API's `agent_name`: the partner part of `partnerAgent`, lower-cased.
    package var agentName: String { String(partnerAgent.prefix { $0 != "_" }).lowercased() }
    /// A Facebook Login for Business configuration: the dialog takes it instead of `scope`.
    package var loginConfigId: String?

    package static func load(_ read: EnvironmentReader) throws(ConfigError) -> MetaSettings {
        MetaSettings(
            appID: try read.digits("META_APP_ID", problem: "must be the numeric App ID"),
            appSecret: read.value("META_APP_SECRET"),
            apiVersion: try apiVersion(read),
            graphURL: try EnvironmentReader.baseURL(
                read.value("META_GRAPH_URL") ?? "https://graph.facebook.com", variable: "META_GRAPH_URL"),
            dialogURL: try EnvironmentReader.baseURL(
                read.value("META_DIALOG_URL") ?? "https://www.facebook.com", variable: "META_DIALOG_URL"),
            scopes: try scopes(read),
            redirectBaseURL: try read.url("OAUTH_REDIRECT_BASE_URL"),
            timeoutMilliseconds: try read.whole(
                "META_TIMEOUT_MS", 100...120_000, default: 10_000, unit: nil, problem: "must be milliseconds between 100 and 120000"),
            partnerAgent: try partnerAgent(read.value("META_PARTNER_AGENT")),
            loginConfigId: try read.digits("META_LOGIN_CONFIG_ID", problem: "must be the configuration's id (digits)"))
    }

    private static func apiVersion(_ read: EnvironmentReader) throws(ConfigError) -> String {
        let version = read.value("META_API_VERSION") ?? defaultAPIVersion
        guard version.isGraphVersion else { throw ConfigError(variable: "META_API_VERSION", problem: "must look like v26.0") }
        return version
    }

    private static func scopes(_ read: EnvironmentReader) throws(ConfigError) -> [String] {
        let scopes = (read.value("META_SCOPES") ?? "ads_read,business_management")
            .split(separator: ",").map { $0.trimmed }.filter { !$0.isEmpty }
        guard !scopes.isEmpty, scopes.allSatisfy({ $0.consists(of: ASCII.isLowerOrUnderscore, length: 1...64) }) else {
            throw ConfigError(variable: "META_SCOPES", problem: "must be comma-separated permission names")
        }
        return scopes
    }

    /// `[partner]_[major]_[minor]`: letters, digits and hyphens, then two version numbers.
    private static func partnerAgent(_ raw: String?) throws(ConfigError) -> String {
        guard let raw else { return defaultPartnerAgent }
        let parts = raw.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].consists(of: { ASCII.isAlphanumeric($0) || $0 == 45 }, length: 1...40),
            parts[1].consists(of: ASCII.isDigit, length: 1...6), parts[2].consists(of: ASCII.isDigit, length: 1...6)
        else {
            throw ConfigError(variable: "META_PARTNER_AGENT", problem: "must look like partner_1_0 ([partner]_[major]_[minor])")
        }
        return raw
    }

    // MARK: Required values, asked for by the routes that need them

    package func app() throws(ConfigError) -> App {
        guard let id = appID else { throw ConfigError(variable: "META_APP_ID", problem: "is not set") }
        guard let secret = appSecret else { throw ConfigError(variable: "META_APP_SECRET", problem: "is not set") }
        return App(id: id, secret: secret)
    }

    package func redirectBase() throws(ConfigError) -> String {
        guard let base = redirectBaseURL else { throw ConfigError(variable: "OAUTH_REDIRECT_BASE_URL", problem: "is not set") }
        return base
    }

    /// `redirect_uri`, byte for byte the same in the dialog and in the code exchange.
    package func callbackURL() throws(ConfigError) -> String {
        try redirectBase() + "/api/connect/meta/callback"
    }
}
