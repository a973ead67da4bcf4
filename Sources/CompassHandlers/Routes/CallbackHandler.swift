import CompassMeta
import CompassPlatform
import CompassStorage

/// GET /api/connect/meta/callback: Meta's redirect back. Always a 302 to the settings page,
/// with `connected=meta` or one of the documented error parameters, never anywhere built
/// from the request.
package struct CallbackHandler: Handler {
    package static let name = "callback"
    package static let methods = ["GET"]
    package static let paths = ["/api/connect/meta/callback"]
    package let dependencies: Dependencies

    /// Where the browser lands: `?connected=meta`, or `?error=` with the raw value.
    package enum Landing: String {
        case connected
        case denied = "meta_denied"
        case stateInvalid = "meta_state_invalid"
        case exchangeFailed = "meta_exchange_failed"
    }

    package func handle(_ request: CGIRequest) throws -> CGIResponse {
        let base = try dependencies.config.meta.redirectBase()
        // Config errors must surface as 500 misconfigured, not as a redirect that hides them.
        _ = try dependencies.config.meta.app()
        _ = try dependencies.config.platform.credentialCipher()
        _ = try dependencies.config.platform.sessionSecret()
        let outcome = complete(request)
        dependencies.logger.info("callback_finished", ["outcome": .string(outcome.rawValue)])
        let query = outcome == .connected ? "connected=meta" : "error=\(outcome.rawValue)"
        return .redirect(to: "\(base)/settings/integrations?\(query)")
    }

    private func complete(_ request: CGIRequest) -> Landing {
        let session: Session
        do {
            session = try dependencies.authenticate(request)
        } catch {
            // Without a session the state cannot be tied to a tenant. An earlier build's stored
            // state is consumed all the same; a signed one costs an unauthenticated caller no write.
            if let nonce = request.query.single("state") { _ = try? consumeState(nonce) }
            return request.query.contains("error") ? .denied : .stateInvalid
        }

        if request.query.contains("error") {
            if let state = request.query.single("state") { _ = try? useState(state, tenant: session.tenantId) }
            logger.info("meta_denied", ["reason": .string(String(request.query.single("error_reason")?.prefix(64) ?? ""))])
            return .denied
        }

        guard let state = request.query.single("state"), let code = request.query.single("code"),
            !code.isEmpty, code.utf8.count <= 2048
        else { return .stateInvalid }
        do {
            guard try useState(state, tenant: session.tenantId) else { return .stateInvalid }
        } catch {
            logger.error("store_failed", ["step": "consume_oauth_state", "error": .string("\(error)")])
            return .exchangeFailed
        }

        do {
            try connect(tenantId: session.tenantId, code: code)
            return .connected
        } catch let failure as GraphFailure {
            logger.warn("meta_exchange_failed", failure.logFields)
            return .exchangeFailed
        } catch {
            logger.error("connect_failed", ["error": .string("\(error)")])
            return .exchangeFailed
        }
    }

    /// True when `state` is the tenant's, in its time, and used now for the first time. A signed
    /// state (`OAuthStates`) in its time is used up even when it is another tenant's; a state an
    /// earlier build stored is consumed from its record.
    private func useState(_ state: String, tenant: String) throws(StoreError) -> Bool {
        let now = dependencies.clock.now
        let states: OAuthStates
        do {
            states = OAuthStates(sessionSecret: try dependencies.config.platform.sessionSecret())
        } catch {
            return false
        }
        switch states.check(state, tenant: tenant, now: now) {
        case .expired:
            logger.warn("oauth_state_rejected", ["expired": .bool(true)])
            return false
        case .otherTenant:
            _ = try OAuthStates.use(state, store: dependencies.store)
            logger.warn("oauth_state_rejected", ["same_tenant": .bool(false)])
            return false
        case .valid:
            return try OAuthStates.use(state, store: dependencies.store)
        case .notSigned:
            guard let stored = try consumeState(state) else { return false }
            let age = now.timeIntervalSince(stored.createdAt)
            guard stored.tenantId == tenant, age >= -Double(OAuthStates.clockSkewSeconds), age <= Double(OAuthState.lifetimeSeconds)
            else {
                logger.warn("oauth_state_rejected", ["same_tenant": .bool(stored.tenantId == tenant), "age_s": .int(Int(age))])
                return false
            }
            return true
        }
    }

    private var logger: Logger { dependencies.logger }

    /// A state an earlier build stored: its record, deleted so it cannot be used again; nil when
    /// unknown, expired or already used (a concurrent use loses the conditional delete).
    private func consumeState(_ nonce: String) throws(StoreError) -> OAuthState? {
        guard nonce.consists(of: ASCII.isIdentifier, length: 16...128) else { return nil }
        let key = RecordKey.oauthState(nonce: nonce)
        let loaded: (OAuthState, UInt64)?
        do {
            loaded = try dependencies.records.load(OAuthState.self, at: key)
        } catch .corrupt {
            _ = try? dependencies.store.delete(key)
            return nil
        }
        guard let (state, version) = loaded else { return nil }
        do {
            guard try dependencies.store.delete(key, ifVersion: version) else { return nil }
        } catch .versionMismatch {
            return nil
        }
        return state
    }

    /// What Meta granted: the long-lived (or system-user) token and what Meta says of it.
    private struct Grant {
        var token: String
        var expiresIn: Int?
        var systemUser: Bool
        var metaUserId: String
        var clientBusinessId: String?
        var info: GraphClient.TokenInfo
        var accounts: [AdAccount]
    }

    /// Everything Meta is asked happens before anything is written, so a failure part-way
    /// leaves the tenant's previous records exactly as they were.
    private func connect(tenantId: String, code: String) throws {
        let grant = try askMeta(code: code)
        let now = dependencies.clock.now
        let granted = grant.info.scopes ?? dependencies.config.meta.scopes
        var credential = IntegrationCredential(
            tenantId: tenantId,
            token: try dependencies.cipher().seal(grant.token, context: IntegrationCredential.sealContext(tenantId: tenantId)),
            expiresAt: grant.info.expiresAt.flatMap { $0 > 0 ? Date(unixSeconds: $0) : nil }
                ?? grant.expiresIn.map { now.addingTimeInterval(TimeInterval($0)) },
            dataAccessExpiresAt: grant.info.dataAccessExpiresAt.flatMap { $0 > 0 ? Date(unixSeconds: $0) : nil },
            scopes: granted, metaUserId: grant.metaUserId, updatedAt: now, checkedAt: now)
        if grant.systemUser {
            credential.tokenType = "system_user"
            credential.expiresAt = nil
            credential.dataAccessExpiresAt = nil
        }
        let previous = try dependencies.records.loadUnlessCorrupt(Integration.self, at: RecordKey.integration(tenantId))?.0
        var settings = Integration.Settings(adAccounts: grant.accounts)
        // A reconnect keeps the tenant's choices while the chosen account is still granted.
        if let previous, let chosen = previous.config.adAccountId, grant.accounts.contains(where: { $0.id == chosen }) {
            settings.adAccountId = chosen
            settings.pixelId = previous.config.pixelId
            settings.datasets = previous.config.datasets
        }
        // A code still in force is kept, with its end (and its entry in the expiry index).
        if let previous, previous.config.testEventCode(at: now) != nil {
            settings.testEventCode = previous.config.testEventCode
            settings.testEventCodeExpiresAt = previous.config.testEventCodeExpiresAt
        }
        var integration = Integration(
            tenantId: tenantId, status: .connected, statusReason: nil, metaUserId: grant.metaUserId, config: settings,
            grantedScopes: granted, missingScopes: dependencies.config.meta.scopes.filter { !granted.contains($0) },
            connectedAt: previous?.status == .connected ? previous!.connectedAt : now, updatedAt: now)
        integration.tokenType = grant.systemUser ? "system_user" : "user"
        integration.clientBusinessId = grant.clientBusinessId
        try save(credential, integration, previous: previous)
        IntegrationLifecycle(dependencies: dependencies).countStatus(from: previous?.status, to: .connected)
        // A new record: a pixel problem of the one it replaces is gone with it.
        let unavailable = previous?.unavailableDatasets ?? 0
        if unavailable > 0 { dependencies.metrics.add(MetricCatalog.pixelsUnavailable, [:], -unavailable) }
        dependencies.logger.info(
            "meta_connected",
            [
                "ad_accounts": .int(grant.accounts.count), "missing_scopes": .strings(integration.missingScopes),
            ])
    }

    /// The code exchanged, the token made long-lived (a system user's is not: it does not
    /// expire), and the user, the client business, the token's facts and the ad accounts read.
    private func askMeta(code: String) throws -> Grant {
        let config = dependencies.config
        let graph = try dependencies.graph()
        let shortLived = try graph.exchangeCode(code, redirectURI: try config.meta.callbackURL())
        // With Facebook Login for Business the configuration may give a system-user token.
        let systemUser = try config.meta.loginConfigId != nil && graph.debugToken(shortLived.accessToken).type == "SYSTEM_USER"
        let longLived = systemUser ? shortLived : try graph.exchangeForLongLivedToken(shortLived.accessToken)
        let token = longLived.accessToken
        let user = try graph.me(token: token)
        let clientBusiness = systemUser ? try graph.clientBusinessId(token: token) : nil
        let info = try graph.debugToken(token)
        guard info.isValid, info.appId == nil || info.appId == graph.app.id else {
            throw GraphFailure.badResponse(status: 200, reason: "debug_token says the token is not valid for this app")
        }
        // A configuration's grant names its ad accounts; without one, the listing endpoint.
        let grantedAccounts = systemUser ? info.grantedAdAccounts : []
        let accounts =
            grantedAccounts.isEmpty
            ? try graph.adAccounts(token: token)
            : try grantedAccounts.map { id throws(GraphFailure) in try graph.adAccount(id, token: token) }
        return Grant(
            token: token, expiresIn: longLived.expiresIn, systemUser: systemUser, metaUserId: user.id,
            clientBusinessId: clientBusiness, info: info, accounts: accounts)
    }

    /// The records written: the due and expiry entries, then the credential (an integration never
    /// points at a missing token), the purge marker lifted, the Meta user's index, then the
    /// integration.
    private func save(_ credential: IntegrationCredential, _ integration: Integration, previous: Integration?) throws {
        let tenantId = integration.tenantId
        let now = dependencies.clock.now
        let records = dependencies.records
        var credential = credential
        // Meta confirmed the token just now: its first check is a day away, its entry in the
        // due index written before the credential that names it.
        let due = DueIndex(store: dependencies.store)
        credential.dueAt = DueIndex.next(
            for: credential, now: now, renewalWindow: dependencies.config.routes.renewalWindow,
            random: dependencies.random)
        try due.add(tenantId, at: credential.dueAt!)
        let replaced = try records.loadUnlessCorrupt(IntegrationCredential.self, at: RecordKey.credential(tenantId))?.0
        let expiry = TokenExpiry(store: dependencies.store)
        try expiry.add(tenantId, expiresAt: credential.expiresAt, replacing: replaced?.expiresAt)
        try records.save(credential, at: RecordKey.credential(tenantId))
        expiry.remove(tenantId, expiresAt: replaced?.expiresAt, keeping: credential.expiresAt)
        // A new consent: the tenant's events may be queued again.
        try dependencies.store.delete(RecordKey.purging(tenantId))
        due.remove(tenantId, at: replaced?.dueAt, keeping: credential.dueAt)
        let users = MetaUserIndex(store: dependencies.store)
        try users.add(integration.metaUserId, tenantId)
        if let previous, previous.metaUserId != integration.metaUserId { try? users.remove(previous.metaUserId, tenantId) }
        try records.save(integration, at: RecordKey.integration(tenantId))
        // Events that waited for this connection go at the next cron run.
        EventPipeline(dependencies: dependencies, tenant: tenantId).outboxDueNow()
    }

    package init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }
}
