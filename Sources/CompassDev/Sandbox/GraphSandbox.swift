import CompassHandlers
import CompassHosts
import CompassMeta
import CompassPlatform
import CompassStorage

#if canImport(Glibc)
    import Glibc
#endif

/// An emulation of the parts of Meta's Graph API and OAuth dialog this product uses, faithful
/// to META-API.md: the dialog, code and long-lived exchanges, `/me`, `/debug_token`,
/// `/me/adaccounts` (paged), `/act_X/adspixels`, `DELETE /me/permissions`, Meta's error bodies,
/// `appsecret_proof` required on every user-token call. Plus test controls under `/sandbox/`:
/// fault injection and inspection. Its state lives in its own store, never the product's.
package struct GraphSandbox: Sendable {
    package var store: any KeyValueStore
    package var appId: String
    package var appSecret: String
    /// Public base URL of the sandbox (paging links point here).
    package var baseURL: String
    package var clock: any Clock
    package var random: any RandomSource
    /// What each Graph call waits before it is answered (a round trip to Meta; control calls under
    /// /sandbox do not wait).
    package var latencyMilliseconds: Int = 0

    package struct Request: Sendable {
        package var method: String
        /// Path below the sandbox's mount, starting with `/`.
        package var path: String
        package var query: QueryParameters
        package var body: [UInt8] = []
    }

    package func handle(_ request: Request) -> HTTPResponse {
        let segments = request.path.split(separator: "/").map(String.init)
        if segments.first == "sandbox" { return control(request, Array(segments.dropFirst())) }
        if latencyMilliseconds > 0 { usleep(UInt32(latencyMilliseconds) * 1000) }
        guard let version = segments.first, version.isGraphVersion else {
            return graphError(400, code: 2500, type: "OAuthException", message: "Unknown path components: \(request.path)")
        }
        let route = segments.dropFirst().joined(separator: "/")
        if route == "dialog/oauth" {
            recordCall(request, route: route, status: 200)
            return dialog(request, version: version)
        }
        let response = graphCall(request, route: route, version: version)
        recordCall(request, route: route, status: response.status)
        return response
    }

    /// A Graph call: refused as Meta refuses a name it does not know (`MetaGraphSchema`), then
    /// a queued fault, then the answer.
    private func graphCall(_ request: Request, route: String, version: String) -> HTTPResponse {
        if let refusal = strictCheck(request, route: route) {
            return graphError(400, code: 100, type: "OAuthException", message: refusal.message)
        }
        if let fault = takeFault(for: route) { return fault }
        switch (request.method, route) {
        case ("GET", "oauth/access_token"): return accessToken(request.query)
        case ("GET", "debug_token"): return debugToken(request.query)
        case ("GET", "dataset_quality"): return withUser(request) { _ in datasetQuality(request.query) }
        case ("GET", "me"):
            return withUser(request) { token in
                // A system user's /me names the client's business (`fields=client_business_id`).
                guard token.systemUser == true else { return json(["id": .string(token.userId), "name": .string("Sandbox User")]) }
                var answer: [String: JSONValue] = ["id": .string(token.userId)]
                if request.query.single("fields")?.contains("client_business_id") == true {
                    answer["client_business_id"] = .string(SandboxData.businessId)
                } else {
                    answer["name"] = .string("Compass System User")
                }
                return json(answer)
            }
        case ("GET", "me/adaccounts"): return withUser(request) { _ in adAccounts(request, version: version) }
        case ("DELETE", "me/permissions"):
            return withUser(request) { token in revoke(token) }
        default:
            let parts = route.split(separator: "/")
            if request.method == "GET", parts.count == 1, let account = SandboxData.account(String(parts[0])) {
                return withUser(request) { _ in json(Self.row(account)) }
            }
            if request.method == "GET", parts.count == 2, parts[1] == "adspixels", AdAccountId.isValid(String(parts[0])) {
                return withUser(request) { _ in pixels(String(parts[0]), request, version: version) }
            }
            if request.method == "GET", parts.count == 2, parts[1] == "owned_pixels", parts[0] == SandboxData.businessId {
                return withUser(request) { token in ownedPixels(request, token: token, version: version) }
            }
            if request.method == "GET", parts.count == 2, parts[1] == "client_pixels", parts[0] == SandboxData.businessId {
                return withUser(request) { token in
                    guard token.scopes.contains("business_management") else {
                        return graphError(
                            403, code: 200, type: "OAuthException",
                            message: "(#200) Requires business_management permission to manage the object")
                    }
                    let shared = JSONValue.object([
                        "id": .string(SandboxData.sharedPixel), "name": .string("Partner's Shared Pixel"),
                        "is_unavailable": .bool(false),
                    ])
                    return page([shared], request, path: "\(version)/\(SandboxData.businessId)/client_pixels")
                }
            }
            if request.method == "POST", parts.count == 2, parts[1] == "events", PixelId.isValid(String(parts[0])) {
                return withUser(request) { _ in events(pixel: String(parts[0]), request) }
            }
            return graphError(
                400, code: 100, type: "GraphMethodException",
                message: "Unsupported \(request.method) request. Object does not exist or cannot be loaded.",
                subcode: 33)
        }
    }

    // MARK: Meta's names

    /// What Meta would refuse in this call: a parameter, a field (nested ones too) or an event
    /// key that Meta's definitions (`MetaGraphSchema`) do not have.
    private func strictCheck(_ request: Request, route: String) -> MetaGraphSchema.Refusal? {
        let schema = MetaGraphSchema.shared
        guard let (call, type, isEdge) = definition(request.method, route) else { return nil }
        var names = request.query.pairs.map(\.name)
        let body = request.body.isEmpty ? nil : try? JSONParser.parse(request.body)
        names += (body?.object ?? [:]).keys.sorted()
        if let refusal = schema.unknownParameter(names, of: call, isEdge: isEdge) { return refusal }
        if let fields = request.query.single("fields") {
            guard let type else { return .unknownParameter("fields") }
            if let refusal = schema.unknownField(in: fields, of: type) { return refusal }
        }
        for (index, event) in (body?["data"]?.array ?? []).enumerated() {
            if let refusal = schema.unknownEventKey(in: event, at: index) { return refusal }
        }
        return nil
    }

    /// The definition of a call this sandbox answers: an endpoint, an object (`me`, `act_X`), or
    /// an edge of one; nil for a path Meta has no such thing at (answered as Meta does, below).
    private func definition(_ method: String, _ route: String) -> (MetaGraphSchema.Edge, String?, Bool)? {
        let schema = MetaGraphSchema.shared
        if let endpoint = schema.endpoints[route], endpoint.method == method { return (endpoint, endpoint.returns, false) }
        let parts = route.split(separator: "/").map(String.init)
        if parts.count == 1, method == "GET" {
            let type = parts[0] == "me" ? "User" : AdAccountId.isValid(parts[0]) ? "AdAccount" : nil
            return type.map { (MetaGraphSchema.Edge(method: "GET", returns: $0, parameters: []), $0, false) }
        }
        guard parts.count == 2,
            let edge = schema.edges.first(where: { $0.key.hasSuffix("/" + parts[1]) && $0.value.method == method })?.value
        else { return nil }
        let returns = edge.returns == "AbstractCrudObject" ? nil : edge.returns
        return (edge, returns, true)
    }

    // MARK: Dialog

    private func dialog(_ request: Request, version: String) -> HTTPResponse {
        let query = request.query
        guard query.single("client_id") == appId else {
            return html(400, "<h1>Invalid App ID</h1><p>The client_id does not match the sandbox app.</p>")
        }
        guard let redirect = query.single("redirect_uri"), redirect.hasPrefix("http") else {
            return html(400, "<h1>Missing redirect_uri</h1>")
        }
        let state = query.single("state")
        switch query.single("sandbox_action") {
        case "approve":
            let code = "AQ" + Base64URL.encode(random.bytes(24))
            let declined = (query.single("sandbox_decline") ?? "").split(separator: ",").map(String.init)
            // A Facebook Login for Business configuration fixes the permissions; this sandbox's
            // configurations grant ads_read and business_management.
            let asked = query.single("config_id") != nil ? "ads_read,business_management" : (query.single("scope") ?? "")
            let scopes = asked.split(separator: ",").map(String.init).filter { !declined.contains($0) }
            let systemUser = query.single("config_id") != nil && query.single("sandbox_token_type") == "system_user"
            let grant = CodeGrant(
                redirectURI: redirect,
                userId: systemUser ? SandboxData.systemUserId : (query.single("sandbox_user") ?? SandboxData.defaultUserId),
                scopes: scopes, systemUser: systemUser ? true : nil)
            _ = try? store.put("codes/" + digest(code), JSON.encode(grant), ttl: 600)
            var back = QueryParameters()
            back.append("code", code)
            if let state { back.append("state", state) }
            return redirectTo(redirect, back)
        case "deny":
            var back = QueryParameters()
            back.append("error", "access_denied")
            back.append("error_code", "200")
            back.append("error_description", "Permissions error")
            back.append("error_reason", "user_denied")
            if let state { back.append("state", state) }
            return redirectTo(redirect, back)
        default:
            func link(_ action: String) -> String {
                var next = QueryParameters(query.pairs.filter { $0.name != "sandbox_action" })
                next.append("sandbox_action", action)
                return "\(baseURL)/\(version)/dialog/oauth?\(next.encoded)"
            }
            let scope = escapeHTML(query.single("scope") ?? "")
            return html(
                200,
                """
                <h1>Meta sandbox: authorize Compass</h1>
                <p>App \(escapeHTML(appId)) asks for: <code>\(scope)</code></p>
                <p><a id="approve" class="button" href="\(escapeHTML(link("approve")))">Approve</a>
                <a id="cancel" class="button" href="\(escapeHTML(link("deny")))">Cancel</a></p>
                <p class="note">This page stands in for facebook.com while no Meta app is configured.</p>
                """)
        }
    }

    // MARK: Tokens

    struct CodeGrant: Codable {
        var redirectURI: String
        var userId: String
        var scopes: [String]
        /// Facebook Login for Business with a configuration that gives a system-user token.
        var systemUser: Bool? = nil
    }

    struct TokenRecord: Codable {
        var userId: String
        var scopes: [String]
        var longLived: Bool
        var expiresAt: Int64
        var issuedAt: Int64
        var revoked: Bool = false
        var systemUser: Bool? = nil
    }

    private func accessToken(_ query: QueryParameters) -> HTTPResponse {
        guard query.single("client_id") == appId else {
            return graphError(400, code: 101, type: "OAuthException", message: "Error validating application. Invalid application ID.")
        }
        guard let secret = query.single("client_secret"),
            Crypto.constantTimeEquals(Array(secret.utf8), Array(appSecret.utf8))
        else {
            return graphError(400, code: 1, type: "OAuthException", message: "Error validating client secret.")
        }
        let now = clock.now.unixSeconds
        if query.single("grant_type") == "fb_exchange_token" {
            guard let short = query.single("fb_exchange_token"), let (record, _) = loadToken(short) else {
                return graphError(400, code: 190, type: "OAuthException", message: "Invalid OAuth access token - Cannot parse access token")
            }
            guard !record.revoked else { return tokenError(record) }
            guard record.expiresAt > now else { return tokenError(record) }
            guard record.systemUser != true else {
                return graphError(400, code: 100, type: "OAuthException", message: "(#100) A system user access token cannot be exchanged")
            }
            return issueToken(userId: record.userId, scopes: record.scopes, longLived: true)
        }
        guard let code = query.single("code"), code.hasPrefix("AQ") else {
            return graphError(400, code: 100, type: "OAuthException", message: "Invalid verification code format.")
        }
        let key = "codes/" + digest(code)
        guard let found = try? store.get(key), let grant = try? JSON.decode(CodeGrant.self, from: found.value) else {
            return graphError(400, code: 100, type: "OAuthException", message: "This authorization code has been used.", subcode: 36009)
        }
        guard query.single("redirect_uri") == grant.redirectURI else {
            return graphError(
                400, code: 100, type: "OAuthException",
                message:
                    "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
                subcode: 36008)
        }
        // A code is single-use: a second exchange fails as at Meta.
        guard (try? store.delete(key, ifVersion: found.version)) == true else {
            return graphError(400, code: 100, type: "OAuthException", message: "This authorization code has been used.", subcode: 36009)
        }
        return issueToken(userId: grant.userId, scopes: grant.scopes, longLived: false, systemUser: grant.systemUser == true)
    }

    private func issueToken(userId: String, scopes: [String], longLived: Bool, systemUser: Bool = false) -> HTTPResponse {
        let token = "EAAS" + Base64URL.encode(random.bytes(30))
        let now = clock.now.unixSeconds
        // A system-user token does not expire: kept a century here, and no expires_in.
        let lifetime: Int64 = systemUser ? 100 * 365 * 86_400 : longLived ? settings.longLivedTokenSeconds : 3_600
        let record = TokenRecord(
            userId: userId, scopes: scopes, longLived: longLived || systemUser, expiresAt: now + lifetime,
            issuedAt: now, systemUser: systemUser ? true : nil)
        _ = try? store.put("tokens/" + digest(token), JSON.encode(record))
        if systemUser { return json(["access_token": .string(token), "token_type": .string("bearer")]) }
        return json(["access_token": .string(token), "token_type": .string("bearer"), "expires_in": .int(lifetime)])
    }

    private func loadToken(_ token: String) -> (TokenRecord, UInt64)? {
        guard let found = try? store.get("tokens/" + digest(token)),
            let record = try? JSON.decode(TokenRecord.self, from: found.value)
        else { return nil }
        return (record, found.version)
    }

    private func tokenError(_ record: TokenRecord) -> HTTPResponse {
        if record.revoked {
            return graphError(
                400, code: 190, type: "OAuthException",
                message: "Error validating access token: The user has not authorized application \(appId).", subcode: 458)
        }
        return graphError(
            400, code: 190, type: "OAuthException",
            message: "Error validating access token: Session has expired.", subcode: 463)
    }

    /// A user-token call: valid, unexpired, unrevoked token and a correct `appsecret_proof`.
    private func withUser(_ request: Request, _ body: (TokenRecord) -> HTTPResponse) -> HTTPResponse {
        guard let token = request.query.single("access_token"), let (record, _) = loadToken(token) else {
            return graphError(400, code: 190, type: "OAuthException", message: "Invalid OAuth access token - Cannot parse access token")
        }
        guard let proof = request.query.single("appsecret_proof") else {
            return graphError(
                400, code: 100, type: "GraphMethodException",
                message: "API calls from the server require an appsecret_proof argument")
        }
        let expected = GraphClient.appsecretProof(token: token, appSecret: appSecret)
        guard Crypto.constantTimeEquals(Array(proof.utf8), Array(expected.utf8)) else {
            return graphError(400, code: 100, type: "GraphMethodException", message: "Invalid appsecret_proof provided in the API argument")
        }
        guard !record.revoked, record.expiresAt > clock.now.unixSeconds else { return tokenError(record) }
        return body(record)
    }

    private func debugToken(_ query: QueryParameters) -> HTTPResponse {
        guard let appToken = query.single("access_token"),
            Crypto.constantTimeEquals(Array(appToken.utf8), Array("\(appId)|\(appSecret)".utf8))
        else {
            return graphError(400, code: 190, type: "OAuthException", message: "Invalid OAuth access token - Cannot parse access token")
        }
        guard let input = query.single("input_token"), let (record, _) = loadToken(input) else {
            return json([
                "data": .object([
                    "is_valid": .bool(false),
                    "error": .object([
                        "code": .int(190), "message": .string("Invalid OAuth access token."),
                    ]),
                ])
            ])
        }
        let valid = !record.revoked && record.expiresAt > clock.now.unixSeconds
        let systemUser = record.systemUser == true
        var data: [String: JSONValue] = [
            "app_id": .string(appId), "type": .string(systemUser ? "SYSTEM_USER" : "USER"), "application": .string("Compass Sandbox"),
            "is_valid": .bool(valid), "expires_at": .int(systemUser ? 0 : record.expiresAt),
            "data_access_expires_at": .int(systemUser ? 0 : record.issuedAt + 7_776_000),
            "issued_at": .int(record.issuedAt), "user_id": .string(record.userId),
            "scopes": .array(record.scopes.map { .string($0) }),
        ]
        if systemUser {
            data["granular_scopes"] = .array(
                record.scopes.map { scope in
                    .object(["scope": .string(scope), "target_ids": .array(SandboxData.accounts.prefix(2).map { .string($0.accountId) })])
                })
        }
        return json(["data": .object(data)])
    }

    private func revoke(_ record: TokenRecord) -> HTTPResponse {
        // Meta revokes the app's grant for the user: every token of that user stops working.
        var cursor: String? = nil
        repeat {
            guard let page = try? store.list(prefix: "tokens/", after: cursor, limit: 200) else { break }
            for entry in page.entries {
                guard var other = try? JSON.decode(TokenRecord.self, from: entry.value.value), other.userId == record.userId else {
                    continue
                }
                other.revoked = true
                _ = try? store.put(entry.key, JSON.encode(other))
            }
            cursor = page.cursor
        } while cursor != nil
        return json(["success": .bool(true)])
    }

    // MARK: Ad accounts and pixels

    private func adAccounts(_ request: Request, version: String) -> HTTPResponse {
        let rows: [JSONValue] = SandboxData.accounts.map { .object(Self.row($0)) }
        return page(rows, request, path: "\(version)/me/adaccounts")
    }

    private static func row(_ account: SandboxData.Account) -> [String: JSONValue] {
        [
            "id": .string(account.id), "account_id": .string(account.accountId), "name": .string(account.name),
            "currency": .string(account.currency), "account_status": .int(Int64(account.status)),
            "business": .object(["id": .string(SandboxData.businessId), "name": .string("Sandbox Business")]),
        ]
    }

    private func pixels(_ accountId: String, _ request: Request, version: String) -> HTTPResponse {
        guard let account = SandboxData.account(accountId) else {
            return graphError(
                400, code: 100, type: "GraphMethodException",
                message:
                    "Unsupported get request. Object with ID '\(accountId)' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
                subcode: 33)
        }
        let rows: [JSONValue] = account.pixelIds.enumerated().map { index, id in
            .object([
                "id": .string(id), "name": .string("\(account.name) Pixel \(index + 1)"),
                "last_fired_time": .string("2026-11-20T10:00:00+0000"), "is_unavailable": .bool(false),
            ])
        }
        return page(rows, request, path: "\(version)/\(accountId)/adspixels")
    }

    /// Every pixel of the business: those of its accounts and one attached to none.
    private func ownedPixels(_ request: Request, token: TokenRecord, version: String) -> HTTPResponse {
        guard token.scopes.contains("business_management") else {
            return graphError(
                403, code: 200, type: "OAuthException", message: "(#200) Requires business_management permission to manage the object")
        }
        var rows: [JSONValue] = SandboxData.accounts.flatMap { account in
            account.pixelIds.enumerated().map { index, id in
                JSONValue.object([
                    "id": .string(id), "name": .string("\(account.name) Pixel \(index + 1)"),
                    "last_fired_time": .string("2026-11-20T10:00:00+0000"), "is_unavailable": .bool(false),
                ])
            }
        }
        rows.append(
            .object([
                "id": .string(SandboxData.businessOnlyPixel), "name": .string("Sandbox Business Pixel"),
                "is_unavailable": .bool(false),
            ]))
        rows.append(
            .object([
                "id": .string(SandboxData.offlineDataset), "name": .string("Sandbox Store Sales"), "is_unavailable": .bool(false),
            ]))
        return page(rows, request, path: "\(version)/\(SandboxData.businessId)/owned_pixels")
    }

    /// Meta's paging: cursors always, `next` while more remain. The `next` link carries the
    /// access token but, as at Meta, not the `appsecret_proof`.
    private func page(_ rows: [JSONValue], _ request: Request, path: String) -> HTTPResponse {
        let offset =
            request.query.single("after").flatMap { Base64URL.decode($0) }.flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
        let size = min(Int(request.query.single("limit") ?? "25") ?? 25, SandboxData.pageSize)
        let start = min(max(offset, 0), rows.count)
        let end = min(start + max(size, 1), rows.count)
        var paging: [String: JSONValue] = [
            "cursors": .object([
                "before": .string(Base64URL.encode(Array(String(start).utf8))),
                "after": .string(Base64URL.encode(Array(String(end).utf8))),
            ])
        ]
        if end < rows.count {
            var next = QueryParameters(request.query.pairs.filter { !["after", "appsecret_proof"].contains($0.name) })
            next.append("after", Base64URL.encode(Array(String(end).utf8)))
            paging["next"] = .string("\(baseURL)/\(path)?\(next.encoded)")
        }
        return json(["data": .array(Array(rows[start..<end])), "paging": .object(paging)])
    }

    // MARK: Conversions API

    /// The match keys the sandbox's quality figures count, with Meta's identifier for each.
    private static let qualityKeys: [(key: String, identifier: String)] = [
        ("em", "email"), ("ph", "phone"), ("external_id", "external_id"), ("fbp", "fbp"), ("fbc", "fbc"),
        ("client_ip_address", "ip_address"), ("client_user_agent", "user_agent"),
    ]

    /// The Dataset Quality API in Meta's shape, with figures from the events this sandbox
    /// received for the pixel: per event name, the share of events carrying each match key, and
    /// a composite score that grows with them (a plausible stand-in for Meta's model); `web` of
    /// the events from elsewhere than a store, `offline` of a store's (`physical_store`). Only
    /// the fields asked for are answered, as at Meta.
    private func datasetQuality(_ query: QueryParameters) -> HTTPResponse {
        guard let pixel = query.single("dataset_id"), PixelId.isValid(pixel) else {
            return graphError(400, code: 100, type: "OAuthException", message: "(#100) The parameter dataset_id is required")
        }
        guard let agent = query.single("agent_name"), !agent.isEmpty else {
            return graphError(400, code: 100, type: "OAuthException", message: "(#100) The parameter agent_name is required")
        }
        let (web, offline) = keyCounts(pixel: pixel)
        let rows = web.keys.sorted().map { qualityRow($0, events: web[$0]!.events, withKey: web[$0]!.keys) }
        let offlineRows = offline.keys.sorted().map { offlineRow($0, events: offline[$0]!.events, withKey: offline[$0]!.keys) }
        let asked =
            query.single("fields").flatMap { expression -> [FieldExpansion.Field]? in
                var parser = FieldExpansion(Array(expression.utf8))
                return parser.parse()
            } ?? []
        return json(FieldExpansion.project(.object(["web": .array(rows), "offline": .array(offlineRows)]), asked).object ?? [:])
    }

    /// One offline event name's row as Meta's offline page shows it: each score an object with
    /// Meta's recommendation, the match key score with the coverage of email and phone.
    private func offlineRow(_ name: String, events: Int, withKey: [String: Int]) -> JSONValue {
        let email = Double(withKey["em"] ?? 0) / Double(events)
        let phone = Double(withKey["ph"] ?? 0) / Double(events)
        func score(_ value: Double, _ recommendation: String) -> [String: JSONValue] {
            ["score": .double((value * 10).rounded() / 10), "recommendation": .string(recommendation)]
        }
        var matchKey = score(2 + 8 * (email + phone) / 2, "Send an email address and a phone number with every sale.")
        matchKey["coverage"] = .object(["email": .double((email * 1000).rounded() / 10), "phone": .double((phone * 1000).rounded() / 10)])
        return .object([
            "event_name": .string(name),
            "composite": .object(score(1 + 7 * (email + phone) / 2, "Upload sales daily, with the customer's contact details.")),
            "match_key": .object(matchKey),
            "frequency": .object(score(8, "Upload at least once a day.")),
            "freshness": .object(score(7, "Upload each sale within a day of it.")),
        ])
    }

    /// Per event name the sandbox received for the pixel, from elsewhere than a store (`web`)
    /// and from a store (`offline`): how many, and how many carried each key.
    private func keyCounts(pixel: String) -> (web: [String: EventCount], offline: [String: EventCount]) {
        var counts: (web: [String: EventCount], offline: [String: EventCount]) = ([:], [:])
        var cursor: String? = nil
        repeat {
            guard let page = try? store.list(prefix: "events/\(pixel)/", after: cursor, limit: 500) else { break }
            for (_, value) in page.entries {
                guard let stored = try? JSON.decode(JSONValue.self, from: value.value), let event = stored["event"],
                    let name = event["event_name"]?.string
                else { continue }
                let store = event["action_source"]?.string == "physical_store"
                var entry = (store ? counts.offline[name] : counts.web[name]) ?? (0, [:])
                entry.events += 1
                for (key, _) in Self.qualityKeys where event["user_data"]?[key] != nil { entry.keys[key, default: 0] += 1 }
                if store { counts.offline[name] = entry } else { counts.web[name] = entry }
            }
            cursor = page.cursor
        } while cursor != nil
        return counts
    }

    private typealias EventCount = (events: Int, keys: [String: Int])

    /// One event name's row, every field Meta's per-event quality object has.
    private func qualityRow(_ name: String, events: Int, withKey: [String: Int]) -> JSONValue {
        var feedback: [JSONValue] = []
        var contactShare = 0.0
        for (index, (key, identifier)) in Self.qualityKeys.enumerated() {
            let share = Double(withKey[key] ?? 0) / Double(events)
            if index < 3 { contactShare += share / 3 }
            guard share > 0 else { continue }
            let percentage = (share * 1000).rounded() / 10
            feedback.append(.object(["identifier": .string(identifier), "coverage": .object(["percentage": .double(percentage)])]))
        }
        let emailShare = Double(withKey["em"] ?? 0) / Double(events)
        var diagnostics: [JSONValue] = []
        if emailShare < 0.5 {
            diagnostics.append(
                .object([
                    "name": .string("Send more email addresses"),
                    "description": .string("Most of these events do not include an email address."),
                    "solution": .string("Add the customer's email address (em) to your server events."),
                    "percentage": .double(((1 - emailShare) * 1000).rounded() / 10),
                    "affected_event_count": .int(Int64(events - (withKey["em"] ?? 0))), "total_event_count": .int(Int64(events)),
                ]))
        }
        func share(_ percentage: Double, _ description: String) -> JSONValue {
            .object(["percentage": .double(percentage), "description": .string(description)])
        }
        let dedupe = settings.browserDedupeCoverage
        return .object([
            "event_name": .string(name),
            "event_match_quality": .object([
                "composite_score": .double(((2 + 8 * contactShare) * 10).rounded() / 10), "match_key_feedback": .array(feedback),
                "diagnostics": .array(diagnostics),
            ]),
            "event_coverage": .object([
                "percentage": .double(100), "goal_percentage": .double(75),
                "description": .string("Server events cover the browser events of this name."),
            ]),
            "dedupe_key_feedback": .array([
                .object([
                    "dedupe_key": .string("event_id"),
                    "browser_events_with_dedupe_key": share(dedupe, "Browser events with this deduplication key."),
                    "server_events_with_dedupe_key": share(100, "Server events with this deduplication key."),
                    "overall_browser_coverage_from_dedupe_key": share(dedupe, "Browser events deduplicated with server events."),
                ])
            ]),
            "data_freshness": .object(["upload_frequency": .string("real_time"), "description": .string("Events arrive in real time.")]),
            "acr": share(12.5, "Additional conversions reported thanks to the Conversions API."),
            "event_potential_aly_acr_increase": share(3, "Potential additional conversions reported."),
        ])
    }

    /// `POST /{pixel}/events`, validated as Meta validates: one invalid event rejects the batch.
    private func events(pixel: String, _ request: Request) -> HTTPResponse {
        guard
            SandboxData.accounts.contains(where: { $0.pixelIds.contains(pixel) })
                || [SandboxData.businessOnlyPixel, SandboxData.sharedPixel, SandboxData.offlineDataset].contains(pixel)
        else {
            return graphError(
                400, code: 100, type: "GraphMethodException",
                message:
                    "Unsupported post request. Object with ID '\(pixel)' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
                subcode: 33)
        }
        guard let body = try? JSON.decode(JSONValue.self, from: request.body), let data = body["data"]?.array else {
            return graphError(400, code: 100, type: "OAuthException", message: "(#100) The parameter data is required")
        }
        guard data.count <= 1000 else {
            return invalidEvent(2_804_019, "Batch too large", "A request can carry at most 1000 events.")
        }
        let now = clock.now.unixSeconds
        for event in data {
            if let problem = problem(in: event, now: now) { return invalidEvent(problem.0, problem.1, problem.2) }
        }
        let testCode = body["test_event_code"]?.string
        let agent = body["partner_agent"]?.string
        for event in data {
            var stored: [String: JSONValue] = ["event": event, "received_at": .int(now)]
            if let testCode { stored["test_event_code"] = .string(testCode) }
            if let agent { stored["partner_agent"] = .string(agent) }
            let nanos = String(UInt64(Date().timeIntervalSince1970 * 1e9))
            let key =
                "events/\(pixel)/" + String(repeating: "0", count: max(0, 20 - nanos.count)) + nanos + "-" + Hex.encode(random.bytes(6))
            _ = try? store.put(key, JSON.encode(JSONValue.object(stored)))
        }
        return json([
            "events_received": .int(Int64(data.count)), "messages": .array([]),
            "fbtrace_id": .string("Sbx" + Base64URL.encode(random.bytes(9))),
        ])
    }

    private static let hashedKeys: Set<String> = ["em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id"]
    private static let matchKeys: Set<String> = [
        "em", "ph", "external_id", "client_ip_address", "fbc", "fbp", "subscription_id",
        "fb_login_id", "lead_id", "anon_id", "madid", "ctwa_clid", "page_scoped_user_id", "ig_sid",
    ]

    private func problem(in event: JSONValue, now: Int64) -> (Int, String, String)? {
        guard let name = event["event_name"]?.string, !name.isEmpty else {
            return (2_804_008, "Missing event_name", "event_name is required.")
        }
        guard let source = event["action_source"]?.string, ConversionEvent.actionSources.contains(source) else {
            return (2_804_008, "Invalid action_source", "action_source is missing or not a valid value.")
        }
        guard let time = event["event_time"]?.integer else { return (2_804_008, "Missing event_time", "event_time is required.") }
        let days: Int64 = source == "physical_store" ? 62 : 7
        if time < now - days * 86_400 { return (2_804_003, "Event too old", "event_time is more than \(days) days in the past.") }
        if time > now + 60 { return (2_804_003, "Event in the future", "event_time cannot be in the future.") }
        guard let user = event["user_data"]?.object else { return (2_804_050, "Too little customer information", "user_data is required.") }
        for (key, value) in user where Self.hashedKeys.contains(key) {
            let values = value.array ?? [value]
            // A SHA-256 digest in lower case, or as Meta's Parameter Builder library writes one.
            let hashed = { (text: String) -> Bool in
                switch HashedInput(Array(text.utf8)) {
                case .digest: text == text.lowercased()
                case .paramBuilder(let value): value == text
                case .malformed, .plain: false
                }
            }
            guard values.allSatisfy({ $0.string.map(hashed) ?? false }) else {
                return (2_804_016, "Unhashed data", "user_data.\(key) must be hashed with SHA-256.")
            }
        }
        if source == "website" && (event["event_source_url"] == nil || user["client_user_agent"] == nil) {
            return (2_804_024, "Missing website fields", "Website events need event_source_url and client_user_agent.")
        }
        let hasMatchKey = user.keys.contains { Self.matchKeys.contains($0) } || user["client_user_agent"] != nil
        guard hasMatchKey else { return (2_804_050, "Too little customer information", "Add more customer information parameters.") }
        return nil
    }

    private func invalidEvent(_ subcode: Int, _ title: String, _ message: String) -> HTTPResponse {
        var response = graphError(400, code: 100, type: "OAuthException", message: "Invalid parameter", subcode: subcode)
        if var body = try? JSON.decode(JSONValue.self, from: response.body).object, var error = body["error"]?.object {
            error["error_user_title"] = .string(title)
            error["error_user_msg"] = .string(message)
            body["error"] = .object(error)
            response.body = JSON.encode(JSONValue.object(body))
        }
        return response
    }

    // MARK: Settings

    /// Adjustable behaviour (`POST /sandbox/settings`): e.g. short-lived "long-lived" tokens to
    /// watch renewal happen.
    struct Settings: Codable {
        var longLivedTokenSeconds: Int64 = 5_184_000
        /// The share of browser events the Dataset Quality API reports as deduplicated with
        /// server events (the sandbox receives no browser events to count).
        var browserDedupeCoverage: Double = 82

        init(longLivedTokenSeconds: Int64 = 5_184_000, browserDedupeCoverage: Double = 82) {
            self.longLivedTokenSeconds = longLivedTokenSeconds
            self.browserDedupeCoverage = browserDedupeCoverage
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            longLivedTokenSeconds = try container.decodeIfPresent(Int64.self, forKey: .longLivedTokenSeconds) ?? 5_184_000
            browserDedupeCoverage = try container.decodeIfPresent(Double.self, forKey: .browserDedupeCoverage) ?? 82
        }
    }

    private var settings: Settings {
        (try? store.get("settings")).flatMap { $0 }.flatMap { try? JSON.decode(Settings.self, from: $0.value) } ?? Settings()
    }

    // MARK: Faults and inspection

    /// A fault waiting for the next matching calls.
    struct Fault: Codable {
        enum Kind: String, Codable {
            case serverError = "server_error"
            case timeout
            case rateLimit = "rate_limit"
            case tokenExpired = "token_expired"
            case tokenInvalid = "token_invalid"
            /// Code 100, subcode 33: the object (a pixel no longer shared) cannot be reached.
            case objectUnavailable = "object_unavailable"
        }
        var kind: Kind
        /// Route below the version (`oauth/access_token`, `me/adaccounts`); nil for any.
        var path: String?
        var remaining: Int
        var delayMilliseconds: Int?
    }

    struct Call: Codable {
        var method: String
        var path: String
        var parameters: [String]
        var time: Date
        /// The answer's HTTP status (400 for a name Meta does not know).
        var status: Int?
    }

    private func recordCall(_ request: Request, route: String, status: Int) {
        let call = Call(method: request.method, path: route, parameters: request.query.pairs.map(\.name), time: clock.now, status: status)
        let nanos = String(UInt64(clock.now.timeIntervalSince1970 * 1e9))
        let key = "calls/" + String(repeating: "0", count: max(0, 20 - nanos.count)) + nanos + "-" + Hex.encode(random.bytes(4))
        _ = try? store.put(key, JSON.encode(call), ttl: 86_400)
    }

    /// Takes one use of the first fault that matches. Concurrent calls race on the fault's
    /// counter with compare-and-swap and retry, so a fault for N calls fails exactly N calls.
    private func takeFault(for route: String) -> HTTPResponse? {
        guard let page = try? store.list(prefix: "faults/", after: nil, limit: 100) else { return nil }
        for entry in page.entries {
            var current: Versioned? = entry.value
            while let found = current {
                guard var fault = try? JSON.decode(Fault.self, from: found.value), fault.path == nil || fault.path == route,
                    fault.remaining > 0
                else { break }
                fault.remaining -= 1
                let taken: Bool
                if fault.remaining == 0 {
                    taken = (try? store.delete(entry.key, ifVersion: found.version)) == true
                } else {
                    taken = (try? store.compareAndSwap(entry.key, JSON.encode(fault), expected: found.version, ttl: nil)) != nil
                }
                if taken { return faultResponse(fault) }
                current = try? store.get(entry.key)
            }
        }
        return nil
    }

    private func faultResponse(_ fault: Fault) -> HTTPResponse {
        switch fault.kind {
        case .serverError:
            return graphError(
                500, code: 2, type: "OAuthException", message: "An unexpected error has occurred. Please retry your request later.",
                transient: true)
        case .timeout:
            usleep(UInt32(min(fault.delayMilliseconds ?? 15_000, 60_000)) * 1000)
            return graphError(504, code: 2, type: "OAuthException", message: "The request timed out.", transient: true)
        case .rateLimit:
            var response = graphError(429, code: 17, type: "OAuthException", message: "User request limit reached")
            response.headers["x-business-use-case-usage"] =
                #"{"\#(SandboxData.businessId)":[{"type":"ads_management","call_count":100,"total_cputime":20,"total_time":20,"estimated_time_to_regain_access":1}]}"#
            return response
        case .tokenExpired:
            return graphError(
                400, code: 190, type: "OAuthException", message: "Error validating access token: Session has expired.", subcode: 463)
        case .tokenInvalid:
            return graphError(400, code: 190, type: "OAuthException", message: "Invalid OAuth access token - Cannot parse access token")
        case .objectUnavailable:
            return graphError(
                400, code: 100, type: "GraphMethodException",
                message:
                    "Unsupported post request. Object does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
                subcode: 33)
        }
    }

    private func control(_ request: Request, _ segments: [String]) -> HTTPResponse {
        switch (request.method, segments.first) {
        case ("POST", "faults"):
            guard let fault = try? JSON.decode(Fault.self, from: request.body), fault.remaining > 0 else {
                return json(["error": .string(#"expected {"kind","path"?,"remaining","delayMilliseconds"?}"#)], status: 400)
            }
            _ = try? store.put("faults/" + Hex.encode(random.bytes(8)), JSON.encode(fault))
            return json(["queued": .bool(true)], status: 201)
        case ("POST", "settings"):
            guard let settings = try? JSON.decode(Settings.self, from: request.body), settings.longLivedTokenSeconds > 0,
                (0...100).contains(settings.browserDedupeCoverage)
            else {
                return json(["error": .string(#"expected {"longLivedTokenSeconds":n,"browserDedupeCoverage":0-100}"#)], status: 400)
            }
            _ = try? store.put("settings", JSON.encode(settings))
            return json(["saved": .bool(true)])
        case ("DELETE", "faults"):
            clear(prefix: "faults/")
            return json(["cleared": .bool(true)])
        case ("GET", "calls"):
            var calls: [JSONValue] = []
            var cursor: String? = nil
            repeat {
                guard let page = try? store.list(prefix: "calls/", after: cursor, limit: 500) else { break }
                for entry in page.entries {
                    if let call = try? JSON.decode(Call.self, from: entry.value.value) {
                        calls.append(
                            .object([
                                "method": .string(call.method), "path": .string(call.path),
                                "parameters": .array(call.parameters.map { .string($0) }),
                                "status": .int(Int64(call.status ?? 0)),
                            ]))
                    }
                }
                cursor = page.cursor
            } while cursor != nil
            return json(["calls": .array(calls)])
        case ("GET", "events"):
            let prefix = request.query.single("pixel").map { "events/\($0)/" } ?? "events/"
            var events: [JSONValue] = []
            var cursor: String? = nil
            repeat {
                guard let page = try? store.list(prefix: prefix, after: cursor, limit: 1000) else { break }
                events += page.entries.compactMap { try? JSON.decode(JSONValue.self, from: $0.value.value) }
                cursor = page.cursor
            } while cursor != nil
            return json(["events": .array(events)])
        case ("DELETE", "calls"):
            clear(prefix: "calls/")
            return json(["cleared": .bool(true)])
        default:
            return json(["error": .string("unknown sandbox control")], status: 404)
        }
    }

    private func clear(prefix: String) {
        while let page = try? store.list(prefix: prefix, after: nil, limit: 500), !page.entries.isEmpty {
            for entry in page.entries { _ = try? store.delete(entry.key) }
        }
    }

    // MARK: Answers

    private func digest(_ secret: String) -> String { Hex.encode(Crypto.sha256(secret)) }

    private func json(_ object: [String: JSONValue], status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["content-type": "application/json; charset=UTF-8"], body: JSON.encode(object))
    }

    private func graphError(
        _ status: Int, code: Int, type: String, message: String, subcode: Int? = nil,
        transient: Bool = false
    ) -> HTTPResponse {
        var error: [String: JSONValue] = [
            "message": .string(message), "type": .string(type), "code": .int(Int64(code)),
            "fbtrace_id": .string("Sbx" + Base64URL.encode(random.bytes(9))),
        ]
        if let subcode { error["error_subcode"] = .int(Int64(subcode)) }
        if transient { error["is_transient"] = .bool(true) }
        return json(["error": .object(error)], status: status)
    }

    private func html(_ status: Int, _ body: String) -> HTTPResponse {
        let page = """
            <!doctype html><html><head><meta charset="utf-8"><title>Meta sandbox</title>
            <style>body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;color:#1c1e21}
            .button{display:inline-block;padding:.6em 1.4em;margin-right:1em;border-radius:6px;text-decoration:none;
            background:#1877f2;color:#fff}#cancel{background:#e4e6eb;color:#1c1e21}.note{color:#65676b}</style>
            </head><body>\(body)</body></html>
            """
        return HTTPResponse(status: status, headers: ["content-type": "text/html; charset=utf-8"], body: Array(page.utf8))
    }

    private func redirectTo(_ url: String, _ query: QueryParameters) -> HTTPResponse {
        HTTPResponse(status: 302, headers: ["location": url + (url.contains("?") ? "&" : "?") + query.encoded])
    }
}

func escapeHTML(_ text: String) -> String {
    var out = ""
    for char in text {
        switch char {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(char)
        }
    }
    return out
}
