import CompassPlatform

/// The Graph API calls this product makes. Every call that carries a user token also carries
/// its `appsecret_proof`.
package struct GraphClient: Sendable {
    package var app: MetaSettings.App
    package var graphURL: String
    package var dialogURL: String
    package var version: String
    package var timeoutMilliseconds: Int
    package var transport: any HTTPTransport
    package var logger: Logger
    /// Where the usage headers of every answer are recorded, for a job that paces its calls.
    package var usage: GraphUsage?
    /// Where every call is counted, by outcome and Graph error code.
    package var metrics: Metrics?

    package static let maxPages = 100

    package init(settings: MetaSettings, app: MetaSettings.App, transport: any HTTPTransport, logger: Logger) {
        self.app = app
        self.graphURL = settings.graphURL
        self.dialogURL = settings.dialogURL
        self.version = settings.apiVersion
        self.timeoutMilliseconds = settings.timeoutMilliseconds
        self.transport = transport
        self.logger = logger
        logger.redact(app.secret)
    }

    /// Lower-case hex HMAC-SHA256 of the token, keyed by the app secret.
    package static func appsecretProof(token: String, appSecret: String) -> String {
        Hex.encode(Crypto.hmacSHA256(key: appSecret, message: token))
    }

    package func appsecretProof(_ token: String) -> String { Self.appsecretProof(token: token, appSecret: app.secret) }

    // MARK: OAuth

    /// The OAuth dialog: classic login asks for `scope`; Facebook Login for Business names its
    /// configuration (`config_id`, which fixes permissions, assets and the token type) instead.
    package func authorizationURL(
        state: String, redirectURI: String, scopes: [String], rerequest: Bool,
        configId: String? = nil
    ) -> String {
        var query = QueryParameters()
        query.append("client_id", app.id)
        query.append("redirect_uri", redirectURI)
        query.append("state", state)
        if let configId {
            query.append("config_id", configId)
            query.append("override_default_response_type", "true")
        } else {
            query.append("scope", scopes.concatenated(separator: ","))
        }
        query.append("response_type", "code")
        if rerequest { query.append("auth_type", "rerequest") }
        return "\(dialogURL)/\(version)/dialog/oauth?\(query.encoded)"
    }

    package struct AccessToken: Decodable, Sendable {
        package var accessToken: String
        package var expiresIn: Int?
        package enum CodingKeys: String, CodingKey {
            case accessToken = "access_token"
            case expiresIn = "expires_in"
        }
    }

    package func exchangeCode(_ code: String, redirectURI: String) throws(GraphFailure) -> AccessToken {
        let token: AccessToken = try get(
            "oauth/access_token",
            [
                ("client_id", app.id), ("redirect_uri", redirectURI), ("client_secret", app.secret), ("code", code),
            ])
        logger.redact(token.accessToken)
        return token
    }

    package func exchangeForLongLivedToken(_ shortLived: String) throws(GraphFailure) -> AccessToken {
        let token: AccessToken = try get(
            "oauth/access_token",
            [
                ("grant_type", "fb_exchange_token"), ("client_id", app.id), ("client_secret", app.secret),
                ("fb_exchange_token", shortLived),
            ])
        logger.redact(token.accessToken)
        return token
    }

    package struct TokenInfo: Decodable, Sendable {
        package var appId: String?
        /// `USER`, or `SYSTEM_USER` for a Business Integration System User token.
        package var type: String?
        package var isValid: Bool
        package var expiresAt: Int64?
        package var dataAccessExpiresAt: Int64?
        package var scopes: [String]?
        package var userId: String?
        /// Per permission, the assets the client granted it on (a configuration's assets).
        package var granularScopes: [GranularScope]?
        package struct GranularScope: Decodable, Sendable {
            package var scope: String
            package var targetIds: [String]?
            package enum CodingKeys: String, CodingKey {
                case scope
                case targetIds = "target_ids"
            }
        }
        /// The ad accounts (`act_<id>`) the client granted `ads_read` or `ads_management` on.
        package var grantedAdAccounts: [String] {
            var ids: [String] = []
            for grant in granularScopes ?? [] where ["ads_read", "ads_management"].contains(grant.scope) {
                for target in grant.targetIds ?? []
                where target.consists(of: ASCII.isDigit, length: 1...32) && !ids.contains("act_" + target) {
                    ids.append("act_" + target)
                }
            }
            return ids
        }
        package enum CodingKeys: String, CodingKey {
            case appId = "app_id"
            case granularScopes = "granular_scopes"
            case type
            case isValid = "is_valid"
            case expiresAt = "expires_at"
            case dataAccessExpiresAt = "data_access_expires_at"
            case scopes
            case userId = "user_id"
        }
    }

    /// Inspects a user token with the app token (`{app_id}|{app_secret}`).
    package func debugToken(_ token: String) throws(GraphFailure) -> TokenInfo {
        struct Envelope: Decodable { var data: TokenInfo }
        let envelope: Envelope = try get(
            "debug_token",
            [
                ("input_token", token), ("access_token", "\(app.id)|\(app.secret)"),
            ])
        return envelope.data
    }

    package struct MetaUser: Decodable, Sendable {
        package var id: String
    }

    /// The business of the client that installed the app (a system user's `/me`).
    package func clientBusinessId(token: String) throws(GraphFailure) -> String? {
        struct Answer: Decodable {
            var clientBusinessId: String?
            enum CodingKeys: String, CodingKey { case clientBusinessId = "client_business_id" }
        }
        let answer: Answer = try get("me", [("fields", "client_business_id")], token: token)
        return answer.clientBusinessId.flatMap { $0.consists(of: ASCII.isDigit, length: 1...32) ? $0 : nil }
    }

    package func me(token: String) throws(GraphFailure) -> MetaUser {
        let user: MetaUser = try get("me", [("fields", "id")], token: token)
        guard user.id.consists(of: ASCII.isDigit, length: 1...32) else {
            throw .badResponse(status: 200, reason: "user id is not numeric")
        }
        return user
    }

    /// Revokes every permission the user granted the app. True when Meta confirms.
    package func revokePermissions(token: String) throws(GraphFailure) -> Bool {
        let response = try send(method: "DELETE", path: "me/permissions", [], token: token)
        if response.body == Array("true".utf8) { return true }
        struct Success: Decodable { var success: Bool }
        guard let decoded = try? JSON.decode(Success.self, from: response.body) else {
            throw .badResponse(status: response.status, reason: "revoke answer is not {\"success\":...}")
        }
        return decoded.success
    }

    // MARK: Ad accounts and pixels

    /// One ad account by id (the accounts a configuration granted).
    package func adAccount(_ id: String, token: String) throws(GraphFailure) -> AdAccount {
        let row: AdAccount.GraphRow = try get(
            id, [("fields", "id,account_id,name,currency,account_status,business{id,name}")], token: token)
        guard row.id == id else { throw .badResponse(status: 200, reason: "ad account id does not match") }
        return AdAccount(row)
    }

    package func adAccounts(token: String) throws(GraphFailure) -> [AdAccount] {
        let rows: [AdAccount.GraphRow] = try allPages(
            "me/adaccounts",
            [
                ("fields", "id,account_id,name,currency,account_status,business{id,name}"), ("limit", "100"),
            ], token: token)
        return try rows.map { row throws(GraphFailure) in
            guard AdAccountId.isValid(row.id) else { throw .badResponse(status: 200, reason: "ad account id malformed") }
            return AdAccount(row)
        }
    }

    package struct Pixel: Codable, Sendable, Equatable {
        package var id: String
        package var name: String?
        package var lastFiredTime: String?
        package var isUnavailable: Bool?
    }

    /// The pixels attached to an ad account.
    package func pixels(adAccountId: String, token: String) throws(GraphFailure) -> [Pixel] {
        try pixelList("\(adAccountId)/adspixels", token: token)
    }

    /// The pixels a business owns, attached to an ad account or not (needs business_management).
    package func ownedPixels(businessId: String, token: String) throws(GraphFailure) -> [Pixel] {
        try pixelList("\(businessId)/owned_pixels", token: token)
    }

    /// The pixels other businesses share with a business (needs business_management).
    package func clientPixels(businessId: String, token: String) throws(GraphFailure) -> [Pixel] {
        try pixelList("\(businessId)/client_pixels", token: token)
    }

    private func pixelList(_ path: String, token: String) throws(GraphFailure) -> [Pixel] {
        struct Row: Decodable {
            var id: String
            var name: String?
            var lastFiredTime: String?
            var isUnavailable: Bool?
            enum CodingKeys: String, CodingKey {
                case id, name
                case lastFiredTime = "last_fired_time"
                case isUnavailable = "is_unavailable"
            }
        }
        let rows: [Row] = try allPages(path, [("fields", "id,name,last_fired_time,is_unavailable"), ("limit", "100")], token: token)
        return try rows.map { row throws(GraphFailure) in
            guard PixelId.isValid(row.id) else { throw .badResponse(status: 200, reason: "pixel id malformed") }
            return Pixel(id: row.id, name: row.name, lastFiredTime: row.lastFiredTime, isUnavailable: row.isUnavailable)
        }
    }

    // MARK: Transport

    private struct Page<Row: Decodable>: Decodable {
        struct Paging: Decodable { var next: String? }
        var data: [Row]
        var paging: Paging?
    }

    /// Follows `paging.next` until it is absent. A `next` link must point at the Graph host
    /// (it carries the token); `appsecret_proof` is added when the link lacks it.
    private func allPages<Row: Decodable>(_ path: String, _ parameters: [(String, String)], token: String) throws(GraphFailure) -> [Row] {
        var rows: [Row] = []
        var page: Page<Row> = try get(path, parameters, token: token)
        rows += page.data
        var seen: Set<String> = []
        var pages = 1
        while let next = page.paging?.next {
            guard pages < Self.maxPages else { throw .badResponse(status: 200, reason: "more than \(Self.maxPages) pages") }
            guard seen.insert(next).inserted else { throw .badResponse(status: 200, reason: "paging link repeats") }
            let url = try pagingURL(next, token: token)
            page = try decode(try sendURL(method: "GET", url: url, pathForLog: path + " (page)"))
            rows += page.data
            pages += 1
        }
        return rows
    }

    private func pagingURL(_ next: String, token: String) throws(GraphFailure) -> String {
        guard next.hasPrefix(graphURL + "/"), !next.contains("#") else {
            throw .badResponse(status: 200, reason: "paging link points outside the Graph API")
        }
        let parts = next.split(separator: "?", maxSplits: 1)
        var query = QueryParameters(parsing: parts.count > 1 ? parts[1] : "")
        var rebuilt = QueryParameters()
        for (name, value) in query.pairs where name != "access_token" && name != "appsecret_proof" {
            rebuilt.append(name, value)
        }
        rebuilt.append("access_token", token)
        rebuilt.append("appsecret_proof", appsecretProof(token))
        query = rebuilt
        return "\(parts[0])?\(query.encoded)"
    }

    package func get<T: Decodable>(_ path: String, _ parameters: [(String, String)], token: String? = nil) throws(GraphFailure) -> T {
        try decode(try send(method: "GET", path: path, parameters, token: token))
    }

    package func post<T: Decodable>(_ path: String, body: [UInt8], token: String, timeoutMilliseconds: Int? = nil) throws(GraphFailure) -> T
    {
        var query = QueryParameters()
        query.append("access_token", token)
        query.append("appsecret_proof", appsecretProof(token))
        let request = HTTPRequest(
            method: "POST", url: "\(graphURL)/\(version)/\(path)?\(query.encoded)",
            headers: [("Content-Type", "application/json")], body: body,
            timeoutMilliseconds: timeoutMilliseconds ?? self.timeoutMilliseconds)
        return try decode(try perform(request, pathForLog: path))
    }

    private func send(method: String, path: String, _ parameters: [(String, String)], token: String?) throws(GraphFailure) -> HTTPResponse {
        var query = QueryParameters(parameters.map { (name: $0.0, value: $0.1) })
        if let token {
            query.append("access_token", token)
            query.append("appsecret_proof", appsecretProof(token))
        }
        return try sendURL(method: method, url: "\(graphURL)/\(version)/\(path)?\(query.encoded)", pathForLog: path)
    }

    private func sendURL(method: String, url: String, pathForLog: String) throws(GraphFailure) -> HTTPResponse {
        try perform(HTTPRequest(method: method, url: url, timeoutMilliseconds: timeoutMilliseconds), pathForLog: pathForLog)
    }

    /// One call: 2xx comes back; Meta's error body or anything else becomes a `GraphFailure`.
    private func perform(_ request: HTTPRequest, pathForLog: String) throws(GraphFailure) -> HTTPResponse {
        let started = monotonicMilliseconds()
        let response: HTTPResponse
        do {
            response = try transport.send(request)
        } catch {
            let failure = GraphFailure.transport(error)
            metrics?.add(MetricCatalog.graphCalls, ["outcome": "transport_error", "code": "none"])
            logger.warn(
                "graph_call_failed",
                failure.logFields.merging(
                    ["path": .string(pathForLog), "duration_ms": .int(Int(monotonicMilliseconds() - started))]) { a, _ in a })
            throw failure
        }
        var fields: [String: LogValue] = [
            "path": .string(pathForLog), "method": .string(request.method), "http_status": .int(response.status),
            "duration_ms": .int(Int(monotonicMilliseconds() - started)),
        ]
        if let trace = response.headers["x-fb-trace-id"] { fields["fbtrace_id"] = .string(trace) }
        usage?.record(response.headers)
        if (200..<300).contains(response.status) {
            metrics?.add(MetricCatalog.graphCalls, ["outcome": "ok", "code": "none"])
            logger.debug("graph_call", fields)
            return response
        }
        let failure: GraphFailure
        if let error = GraphAPIError.decode(from: response.body) {
            failure = .api(error, httpStatus: response.status, retryAfterSeconds: Self.retryAfter(response.headers))
            metrics?.add(MetricCatalog.graphCalls, ["outcome": "api_error", "code": error.code.map { String($0) } ?? "none"])
        } else {
            failure = .badResponse(status: response.status, reason: "HTTP \(response.status) without a Graph error body")
            metrics?.add(MetricCatalog.graphCalls, ["outcome": "bad_response", "code": "none"])
        }
        logger.warn("graph_call_failed", fields.merging(failure.logFields) { a, _ in a })
        throw failure
    }

    private func decode<T: Decodable>(_ response: HTTPResponse) throws(GraphFailure) -> T {
        do {
            return try JSON.decode(T.self, from: response.body)
        } catch {
            throw .badResponse(status: response.status, reason: "answer does not have the documented shape")
        }
    }

    /// Seconds until Meta lets the app call again: `Retry-After`, or the largest
    /// `estimated_time_to_regain_access` (minutes) in `X-Business-Use-Case-Usage`.
    /// At most a day: an answer asking for longer is taken as a day (and cannot overflow).
    package static func retryAfter(_ headers: [String: String]) -> Int? {
        let day = 86_400
        if let raw = headers["retry-after"], let seconds = Int(raw), seconds >= 0 { return min(seconds, day) }
        guard let usage = headers["x-business-use-case-usage"],
            let decoded = try? JSON.decode([String: [UsageEntry]].self, from: Array(usage.utf8))
        else { return nil }
        let minutes = decoded.values.flatMap { $0 }.compactMap(\.estimatedTimeToRegainAccess).max()
        return minutes.map { min(max($0, 0), day / 60) * 60 }
    }

    private struct UsageEntry: Decodable {
        var estimatedTimeToRegainAccess: Int?
        enum CodingKeys: String, CodingKey { case estimatedTimeToRegainAccess = "estimated_time_to_regain_access" }
    }
}

package enum AdAccountId {
    /// `act_` followed by digits.
    package static func isValid(_ id: String) -> Bool {
        id.hasPrefix("act_") && id.dropFirst(4).consists(of: ASCII.isDigit, length: 1...32)
    }
}

package enum PixelId {
    package static func isValid(_ id: String) -> Bool { id.consists(of: ASCII.isDigit, length: 1...32) }
}
