import CompassPlatform

/// Where the store is (`STORE_URL`): the storage layer's location.
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

/// The storage layer's settings: the store's location and what opening it needs.
package struct StoreSettings: Sendable {
    package static let variables = [
        "STORE_URL", "COMPASS_PG_SCHEMA", "ETCD_USER", "ETCD_PASSWORD", "ETCD_CA_FILE",
        // AWS's own (DynamoDB store): the region, and credentials as every AWS SDK finds them.
        "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    ]

    package var location: StoreLocation
    /// etcd authentication and TLS trust, when the cluster needs them.
    package var etcdUser: String?
    package var etcdPassword: String?
    package var etcdCAFile: String?
    /// The `AWS_` variables as set, for the DynamoDB store's credentials (never logged).
    package var awsEnvironment: [String: String]

    /// `workingDirectory` is where the development default store goes (`.data`) when
    /// `STORE_URL` is unset; nil under a host, where a store must be named.
    package static func load(_ read: EnvironmentReader, workingDirectory: String?) throws(ConfigError) -> StoreSettings {
        if read.value("ETCD_USER") != nil, read.value("ETCD_PASSWORD") == nil {
            throw ConfigError(variable: "ETCD_PASSWORD", problem: "is required when ETCD_USER is set")
        }
        return StoreSettings(
            location: try storeLocation(
                read.value("STORE_URL"), schema: read.value("COMPASS_PG_SCHEMA"), region: read.value("AWS_REGION"),
                workingDirectory: workingDirectory),
            etcdUser: read.value("ETCD_USER"), etcdPassword: read.value("ETCD_PASSWORD"), etcdCAFile: read.value("ETCD_CA_FILE"),
            awsEnvironment: read.environment.filter { $0.key.hasPrefix("AWS_") && !$0.value.isEmpty })
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
    ) throws(ConfigError) -> StoreLocation {
        guard let raw else { return workingDirectory.map { .files(root: $0 + "/.data") } ?? .unset }
        if raw.hasPrefix("dynamodb://") { return try dynamoDBLocation(raw, region: region) }
        if raw.hasPrefix("postgres://") || raw.hasPrefix("postgresql://") {
            let name = schema ?? "compass_meta"
            guard name.consists(of: { ASCII.isLower($0) || ASCII.isDigit($0) || $0 == 95 }, length: 1...63),
                !ASCII.isDigit(name.utf8.first!)
            else {
                throw ConfigError(variable: "COMPASS_PG_SCHEMA", problem: "must be a lower-case SQL name (a-z, 0-9, _; 63 at most)")
            }
            guard !raw.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" }) else {
                throw ConfigError(variable: "STORE_URL", problem: "must be postgres://[user[:password]@]host[:port]/dbname[?sslmode=...]")
            }
            return .postgres(url: raw, schema: name)
        }
        if raw.hasPrefix("file://") {
            let path = String(raw.dropFirst("file://".count))
            guard path.hasPrefix("/"), !path.split(separator: "/").contains("..") else {
                throw ConfigError(variable: "STORE_URL", problem: "must be file:///absolute/path")
            }
            return .files(root: path)
        }
        for (prefix, tls) in [("etcd://", false), ("etcd+https://", true)] where raw.hasPrefix(prefix) {
            let rest = raw.dropFirst(prefix.count)
            let hostPart = rest.prefix { $0 != "/" }
            let path = rest.dropFirst(hostPart.count).split(separator: "/")
            let hosts = hostPart.split(separator: ",").map(String.init)
            guard !hosts.isEmpty, hosts.allSatisfy(isHostAndPort), path.allSatisfy({ KeySegment.isValid($0) }) else {
                throw ConfigError(variable: "STORE_URL", problem: "must be etcd://host:port[,host:port...][/namespace]")
            }
            return .etcd(
                endpoints: hosts.map { (tls ? "https://" : "http://") + $0 },
                namespace: path.map { $0 + "/" }.joined())
        }
        throw ConfigError(variable: "STORE_URL", problem: "must start with file://, etcd://, postgres:// or dynamodb://")
    }

    /// `dynamodb://TABLE?region=REGION[&endpoint=URL]`; the region from `AWS_REGION` (which
    /// Lambda sets) when the URL has none.
    private static func dynamoDBLocation(_ raw: String, region fallback: String?) throws(ConfigError) -> StoreLocation {
        let problem = "must be dynamodb://TABLE[?region=REGION][&endpoint=http(s)://HOST:PORT]"
        let rest = raw.dropFirst("dynamodb://".count)
        let table = String(rest.prefix { $0 != "?" })
        var region = fallback
        var endpoint: String? = nil
        for pair in rest.dropFirst(table.count + 1).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ConfigError(variable: "STORE_URL", problem: problem) }
            switch parts[0] {
            case "region": region = parts[1]
            case "endpoint": endpoint = try EnvironmentReader.baseURL(QueryParameters.decodePath(parts[1]), variable: "STORE_URL")
            default: throw ConfigError(variable: "STORE_URL", problem: problem)
            }
        }
        let tableByte: (UInt8) -> Bool = { ASCII.isAlphanumeric($0) || $0 == 95 || $0 == 45 || $0 == 46 }
        guard table.consists(of: tableByte, length: 3...255) else {
            throw ConfigError(variable: "STORE_URL", problem: "must name a DynamoDB table of 3 to 255 characters (letters, digits, _ - .)")
        }
        guard let region, region.consists(of: { ASCII.isLower($0) || ASCII.isDigit($0) || $0 == 45 }, length: 1...32) else {
            throw ConfigError(variable: "STORE_URL", problem: "needs ?region= (or AWS_REGION): a region such as eu-west-1")
        }
        return .dynamodb(table: table, region: region, endpoint: endpoint)
    }
}
