/// Every environment variable the product reads, parsed once at start into typed values.
/// A malformed value fails `Config.load`; a missing required one fails when a route asks for it,
/// so that a route never needs a variable it does not use.
package struct Config: Sendable {
    package struct MetaApp: Sendable {
        package var id: String
        package var secret: String
    }

    package enum StoreLocation: Sendable, Equatable {
        /// No `STORE_URL` where the working directory means nothing (a CGI host chooses it).
        case unset
        case files(root: String)
        /// `namespace` prefixes every key (from the URL's path), so several deployments can share a cluster.
        case etcd(endpoints: [String], namespace: String)
        /// A libpq connection URI (`postgres://` or `postgresql://`, passed as libpq takes it:
        /// it may hold a password, so it is never logged) and the schema of the tables.
        case postgres(url: String, schema: String)
        /// A DynamoDB table; `endpoint` for a local server instead of the region's.
        case dynamodb(table: String, region: String, endpoint: String?)
    }

    package enum LogLevel: Int, Sendable, Comparable {
        case debug, info, warn, error
        package static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
    }

    package static let defaultAPIVersion = "v26.0"
    /// `partner_agent` on every events request when META_PARTNER_AGENT is not set.
    package static let defaultPartnerAgent = "compass_1_0"

    /// Every variable any route reads (functions.json names a subset per function).
    package static let variables = [
        "META_APP_ID", "META_APP_SECRET", "META_API_VERSION", "META_GRAPH_URL", "META_DIALOG_URL", "META_SCOPES",
        "META_TIMEOUT_MS", "OAUTH_REDIRECT_BASE_URL", "COMPASS_JWT_SECRET", "COMPASS_JWT_AUDIENCE", "COMPASS_JWT_ISSUER", "CREDENTIALS_KEY",
        "CREDENTIALS_KEY_PREVIOUS",
        "CRON_SECRET", "METRICS_TOKEN", "METRICS_NAMESPACE", "STORE_URL", "COMPASS_PG_SCHEMA", "ETCD_USER", "ETCD_PASSWORD", "ETCD_CA_FILE",
        "OUTBOX_MAX_EVENTS",
        "LOG_LEVEL",
        "REFRESH_WINDOW_DAYS", "REFRESH_BUDGET_SECONDS", "META_CONCURRENCY", "COMPASS_WEBHOOK_URL", "COMPASS_WEBHOOK_SECRET",
        "META_PARTNER_AGENT", "META_LOGIN_CONFIG_ID",
        // AWS's own (DynamoDB store): the region, and credentials as every AWS SDK finds them.
        "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        // Development only (scripts/serve without a Meta app): the Graph sandbox and the dev console.
        "SANDBOX_STATE_DIR", "SANDBOX_BASE_URL", "SANDBOX_LATENCY_MS", "COMPASS_DEV_CONSOLE",
    ]

    package var metaAppID: String?
    package var metaAppSecret: String?
    package var apiVersion: String
    package var graphURL: String
    package var dialogURL: String
    package var scopes: [String]
    package var redirectBaseURL: String?
    package var jwtSecret: [UInt8]?
    /// When set, a session's `aud` must name it and its `iss` must equal it.
    package var jwtAudience: String?
    package var jwtIssuer: String?
    package var credentialKeys: CredentialKeys?
    package var cronSecret: String?
    /// The bearer of the metrics route; `CRON_SECRET` when unset.
    package var metricsToken: String?
    /// The CloudWatch namespace of a Lambda deployment's Embedded Metric Format lines.
    package var metricsNamespace: String
    package var store: StoreLocation
    package var logLevel: LogLevel
    package var metaTimeoutMilliseconds: Int
    /// etcd authentication and TLS trust, when the cluster needs them.
    package var etcdUser: String?
    package var etcdPassword: String?
    package var etcdCAFile: String?
    /// The `AWS_` variables as set, for the DynamoDB store's credentials (never logged).
    package var awsEnvironment: [String: String]
    /// Per tenant: past this many waiting events, new ones are refused with 503 rather than
    /// overflowing the store.
    package var outboxMaxEvents: Int
    /// Renew tokens that expire within this many days.
    package var refreshWindowDays: Int
    /// How long before its expiry a token is renewed.
    package var renewalWindow: TimeInterval { TimeInterval(refreshWindowDays * 86_400) }
    /// A refresh-cron run takes no new work past this many seconds (under its one-minute schedule).
    package var refreshBudgetSeconds: Int
    /// Graph calls refresh-cron keeps in flight at once.
    package var metaConcurrency: Int
    /// `partner_agent` on every events request: `[partner]_[major]_[minor]`, as Meta documents it.
    package var partnerAgent: String
    /// The Dataset Quality API's `agent_name`: the partner part of `partnerAgent`, lower-cased.
    package var agentName: String { String(partnerAgent.prefix { $0 != "_" }).lowercased() }
    /// A Facebook Login for Business configuration: the dialog takes it instead of `scope`.
    package var loginConfigId: String?
    /// Where Compass wants notices (`integration.needs_reauth`), and the HMAC key that signs them.
    package var webhookURL: String?
    package var webhookSecret: String?
    /// Development only: where the Graph sandbox keeps its state and the URL it is served at.
    package var sandboxStateDirectory: String?
    package var sandboxBaseURL: String?
    /// Development only: what each Graph sandbox call waits, as a round trip to Meta would.
    package var sandboxLatencyMilliseconds: Int
    /// Development only: the dev login and settings stand-in are served.
    package var devConsoleEnabled: Bool

    package struct Error: Swift.Error, Equatable {
        package var variable: String
        package var problem: String
        package var apiError: APIError { .misconfigured(variable, problem) }

        package init(variable: String, problem: String) {
            self.variable = variable
            self.problem = problem
        }
    }

    /// The environment's values, trimmed; an empty one is unset.
    private struct Reader {
        let environment: [String: String]

        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmed, !raw.isEmpty else { return nil }
            return raw
        }

        /// A whole number within `range`, `fallback` when unset.
        func whole(
            _ name: String, _ range: ClosedRange<Int>, default fallback: Int, unit: String?,
            problem: String? = nil
        ) throws(Config.Error) -> Int {
            guard let raw = value(name) else { return fallback }
            guard let number = Int(raw), range.contains(number) else {
                throw Error(
                    variable: name,
                    problem: problem
                        ?? "must be a whole number \(unit.map { "of \($0) " } ?? "")from \(range.lowerBound) to \(range.upperBound)")
            }
            return number
        }

        /// A base URL, when set.
        func url(_ name: String) throws(Config.Error) -> String? {
            try value(name).map { raw throws(Config.Error) in try baseURL(raw, variable: name) }
        }
    }

    /// `workingDirectory` is where the development default store goes (`.data`) when
    /// `STORE_URL` is unset; nil under a host, where a store must be named.
    package static func load(from environment: [String: String], workingDirectory: String?) throws(Config.Error) -> Config {
        let read = Reader(environment: environment)
        let value = read.value
        try checkPairs(read)
        return Config(
            metaAppID: try appID(read),
            metaAppSecret: value("META_APP_SECRET"),
            apiVersion: try apiVersion(read),
            graphURL: try baseURL(value("META_GRAPH_URL") ?? "https://graph.facebook.com", variable: "META_GRAPH_URL"),
            dialogURL: try baseURL(value("META_DIALOG_URL") ?? "https://www.facebook.com", variable: "META_DIALOG_URL"),
            scopes: try scopes(read),
            redirectBaseURL: try read.url("OAUTH_REDIRECT_BASE_URL"),
            jwtSecret: try jwtSecret(read),
            jwtAudience: value("COMPASS_JWT_AUDIENCE"),
            jwtIssuer: value("COMPASS_JWT_ISSUER"),
            credentialKeys: try credentialKeys(read),
            cronSecret: value("CRON_SECRET"),
            metricsToken: value("METRICS_TOKEN"),
            metricsNamespace: value("METRICS_NAMESPACE") ?? "CompassMeta",
            store: try storeLocation(
                value("STORE_URL"), schema: value("COMPASS_PG_SCHEMA"), region: value("AWS_REGION"), workingDirectory: workingDirectory),
            logLevel: try logLevel(read),
            metaTimeoutMilliseconds: try read.whole(
                "META_TIMEOUT_MS", 100...120_000, default: 10_000, unit: nil,
                problem: "must be milliseconds between 100 and 120000"),
            etcdUser: value("ETCD_USER"),
            etcdPassword: value("ETCD_PASSWORD"),
            etcdCAFile: value("ETCD_CA_FILE"),
            awsEnvironment: environment.filter { $0.key.hasPrefix("AWS_") && !$0.value.isEmpty },
            outboxMaxEvents: try read.whole("OUTBOX_MAX_EVENTS", 1...10_000_000, default: 100_000, unit: nil),
            refreshWindowDays: try read.whole("REFRESH_WINDOW_DAYS", 1...59, default: 7, unit: "days"),
            refreshBudgetSeconds: try read.whole("REFRESH_BUDGET_SECONDS", 1...3600, default: 50, unit: "seconds"),
            metaConcurrency: try read.whole("META_CONCURRENCY", 1...64, default: 8, unit: "calls"),
            partnerAgent: try partnerAgent(value("META_PARTNER_AGENT")),
            loginConfigId: try loginConfigId(read),
            webhookURL: try read.url("COMPASS_WEBHOOK_URL"),
            webhookSecret: value("COMPASS_WEBHOOK_SECRET"),
            sandboxStateDirectory: value("SANDBOX_STATE_DIR"),
            sandboxBaseURL: try read.url("SANDBOX_BASE_URL"),
            sandboxLatencyMilliseconds: try read.whole("SANDBOX_LATENCY_MS", 0...10_000, default: 0, unit: "milliseconds"),
            devConsoleEnabled: value("COMPASS_DEV_CONSOLE") == "1"
        )
    }

    /// Variables that only work together: a webhook needs its secret, an etcd user a password,
    /// a previous credentials key a current one.
    private static func checkPairs(_ read: Reader) throws(Config.Error) {
        if read.value("COMPASS_WEBHOOK_URL") != nil, read.value("COMPASS_WEBHOOK_SECRET") == nil {
            _ = try read.url("COMPASS_WEBHOOK_URL")
            throw Error(variable: "COMPASS_WEBHOOK_SECRET", problem: "is required when COMPASS_WEBHOOK_URL is set")
        }
        if read.value("ETCD_USER") != nil, read.value("ETCD_PASSWORD") == nil {
            throw Error(variable: "ETCD_PASSWORD", problem: "is required when ETCD_USER is set")
        }
    }

    private static func appID(_ read: Reader) throws(Config.Error) -> String? {
        if let id = read.value("META_APP_ID"), !id.consists(of: ASCII.isDigit, length: 1...32) {
            throw Error(variable: "META_APP_ID", problem: "must be the numeric App ID")
        }
        return read.value("META_APP_ID")
    }

    private static func apiVersion(_ read: Reader) throws(Config.Error) -> String {
        let version = read.value("META_API_VERSION") ?? defaultAPIVersion
        guard version.isGraphVersion else { throw Error(variable: "META_API_VERSION", problem: "must look like v26.0") }
        return version
    }

    private static func scopes(_ read: Reader) throws(Config.Error) -> [String] {
        let scopes = (read.value("META_SCOPES") ?? "ads_read,business_management")
            .split(separator: ",").map { $0.trimmed }.filter { !$0.isEmpty }
        guard !scopes.isEmpty, scopes.allSatisfy({ $0.consists(of: ASCII.isLowerOrUnderscore, length: 1...64) }) else {
            throw Error(variable: "META_SCOPES", problem: "must be comma-separated permission names")
        }
        return scopes
    }

    private static func jwtSecret(_ read: Reader) throws(Config.Error) -> [UInt8]? {
        guard let secret = read.value("COMPASS_JWT_SECRET") else { return nil }
        guard secret.utf8.count >= 32 else {
            throw Error(variable: "COMPASS_JWT_SECRET", problem: "must be at least 32 bytes (RFC 7518 section 3.2)")
        }
        return Array(secret.utf8)
    }

    private static func credentialKeys(_ read: Reader) throws(Config.Error) -> CredentialKeys? {
        if let current = read.value("CREDENTIALS_KEY") {
            return try CredentialKeys(current: current, previous: read.value("CREDENTIALS_KEY_PREVIOUS"))
        }
        guard read.value("CREDENTIALS_KEY_PREVIOUS") == nil else {
            throw Error(variable: "CREDENTIALS_KEY", problem: "is required when CREDENTIALS_KEY_PREVIOUS is set")
        }
        return nil
    }

    private static func logLevel(_ read: Reader) throws(Config.Error) -> LogLevel {
        switch read.value("LOG_LEVEL")?.lowercased() ?? "info" {
        case "debug": .debug
        case "info": .info
        case "warn", "warning": .warn
        case "error": .error
        default: throw Error(variable: "LOG_LEVEL", problem: "must be debug, info, warn or error")
        }
    }

    private static func loginConfigId(_ read: Reader) throws(Config.Error) -> String? {
        guard let raw = read.value("META_LOGIN_CONFIG_ID") else { return nil }
        guard raw.consists(of: ASCII.isDigit, length: 1...32) else {
            throw Error(variable: "META_LOGIN_CONFIG_ID", problem: "must be the configuration's id (digits)")
        }
        return raw
    }

    /// `[partner]_[major]_[minor]`: letters, digits and hyphens, then two version numbers.
    private static func partnerAgent(_ raw: String?) throws(Config.Error) -> String {
        guard let raw else { return defaultPartnerAgent }
        let parts = raw.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].consists(of: { ASCII.isAlphanumeric($0) || $0 == 45 }, length: 1...40),
            parts[1].consists(of: ASCII.isDigit, length: 1...6), parts[2].consists(of: ASCII.isDigit, length: 1...6)
        else {
            throw Error(variable: "META_PARTNER_AGENT", problem: "must look like partner_1_0 ([partner]_[major]_[minor])")
        }
        return raw
    }

    // MARK: Required values, asked for by the routes that need them

    package func metaApp() throws(Config.Error) -> MetaApp {
        guard let id = metaAppID else { throw Error(variable: "META_APP_ID", problem: "is not set") }
        guard let secret = metaAppSecret else { throw Error(variable: "META_APP_SECRET", problem: "is not set") }
        return MetaApp(id: id, secret: secret)
    }

    package func redirectBase() throws(Config.Error) -> String {
        guard let base = redirectBaseURL else { throw Error(variable: "OAUTH_REDIRECT_BASE_URL", problem: "is not set") }
        return base
    }

    package func sessionSecret() throws(Config.Error) -> [UInt8] {
        guard let secret = jwtSecret else { throw Error(variable: "COMPASS_JWT_SECRET", problem: "is not set") }
        return secret
    }

    package func credentialCipher() throws(Config.Error) -> CredentialKeys {
        guard let keys = credentialKeys else { throw Error(variable: "CREDENTIALS_KEY", problem: "is not set") }
        return keys
    }

    /// `redirect_uri`, byte for byte the same in the dialog and in the code exchange.
    package func callbackURL() throws(Config.Error) -> String {
        try redirectBase() + "/api/connect/meta/callback"
    }

    // MARK: Parsing

    private static func baseURL(_ raw: String, variable: String) throws(Config.Error) -> String {
        var text = raw
        while text.hasSuffix("/") { text.removeLast() }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(),
            scheme == "https" || scheme == "http", let host = url.host(), !host.isEmpty,
            url.query() == nil, url.fragment() == nil, !text.contains(where: { $0.isWhitespace })
        else {
            throw Error(variable: variable, problem: "must be an http(s) URL without query or fragment")
        }
        return text
    }

    private static func isHostAndPort(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":") else { return false }
        let host = text[..<colon]
        let port = text[text.index(after: colon)...]
        let hostByte: (UInt8) -> Bool = { ASCII.isAlphanumeric($0) || [46, 45, 91, 93, 58].contains($0) }
        return host.consists(of: hostByte, length: 1...253) && port.consists(of: ASCII.isDigit, length: 1...5)
    }

    private static func storeLocation(
        _ raw: String?, schema: String?, region: String?, workingDirectory: String?
    ) throws(Config.Error) -> StoreLocation {
        guard let raw else { return workingDirectory.map { .files(root: $0 + "/.data") } ?? .unset }
        if raw.hasPrefix("dynamodb://") { return try dynamoDBLocation(raw, region: region) }
        if raw.hasPrefix("postgres://") || raw.hasPrefix("postgresql://") {
            let name = schema ?? "compass_meta"
            guard name.consists(of: { ASCII.isLower($0) || ASCII.isDigit($0) || $0 == 95 }, length: 1...63),
                !ASCII.isDigit(name.utf8.first!)
            else {
                throw Error(variable: "COMPASS_PG_SCHEMA", problem: "must be a lower-case SQL name (a-z, 0-9, _; 63 at most)")
            }
            guard !raw.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" }) else {
                throw Error(variable: "STORE_URL", problem: "must be postgres://[user[:password]@]host[:port]/dbname[?sslmode=...]")
            }
            return .postgres(url: raw, schema: name)
        }
        if raw.hasPrefix("file://") {
            let path = String(raw.dropFirst("file://".count))
            guard path.hasPrefix("/"), !path.split(separator: "/").contains("..") else {
                throw Error(variable: "STORE_URL", problem: "must be file:///absolute/path")
            }
            return .files(root: path)
        }
        for (prefix, tls) in [("etcd://", false), ("etcd+https://", true)] where raw.hasPrefix(prefix) {
            let rest = raw.dropFirst(prefix.count)
            let hostPart = rest.prefix { $0 != "/" }
            let path = rest.dropFirst(hostPart.count).split(separator: "/")
            let hosts = hostPart.split(separator: ",").map(String.init)
            guard !hosts.isEmpty, hosts.allSatisfy(isHostAndPort), path.allSatisfy({ KeySegment.isValid($0) }) else {
                throw Error(variable: "STORE_URL", problem: "must be etcd://host:port[,host:port...][/namespace]")
            }
            return .etcd(
                endpoints: hosts.map { (tls ? "https://" : "http://") + $0 },
                namespace: path.map { $0 + "/" }.joined())
        }
        throw Error(variable: "STORE_URL", problem: "must start with file://, etcd://, postgres:// or dynamodb://")
    }

    /// `dynamodb://TABLE?region=REGION[&endpoint=URL]`; the region from `AWS_REGION` (which
    /// Lambda sets) when the URL has none.
    private static func dynamoDBLocation(_ raw: String, region fallback: String?) throws(Config.Error) -> StoreLocation {
        let problem = "must be dynamodb://TABLE[?region=REGION][&endpoint=http(s)://HOST:PORT]"
        let rest = raw.dropFirst("dynamodb://".count)
        let table = String(rest.prefix { $0 != "?" })
        var region = fallback
        var endpoint: String? = nil
        for pair in rest.dropFirst(table.count + 1).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw Error(variable: "STORE_URL", problem: problem) }
            switch parts[0] {
            case "region": region = parts[1]
            case "endpoint": endpoint = try baseURL(QueryParameters.decodePath(parts[1]), variable: "STORE_URL")
            default: throw Error(variable: "STORE_URL", problem: problem)
            }
        }
        let tableByte: (UInt8) -> Bool = { ASCII.isAlphanumeric($0) || $0 == 95 || $0 == 45 || $0 == 46 }
        guard table.consists(of: tableByte, length: 3...255) else {
            throw Error(variable: "STORE_URL", problem: "must name a DynamoDB table of 3 to 255 characters (letters, digits, _ - .)")
        }
        guard let region, region.consists(of: { ASCII.isLower($0) || ASCII.isDigit($0) || $0 == 45 }, length: 1...32) else {
            throw Error(variable: "STORE_URL", problem: "needs ?region= (or AWS_REGION): a region such as eu-west-1")
        }
        return .dynamodb(table: table, region: region, endpoint: endpoint)
    }
}
