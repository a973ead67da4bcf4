import CompassMeta
import CompassPlatform
import CompassStorage

/// GET /api/connect/meta: a fresh single-use state bound to the tenant, then Meta's dialog.
package struct ConnectHandler: Handler {
    package static let name = "connect"
    package static let methods = ["GET"]
    package let dependencies: Dependencies

    package func handle(_ request: CGIRequest) throws -> CGIResponse {
        let session = try dependencies.authenticate(request)
        let config = dependencies.config
        let app = try config.metaApp()
        let redirectURI = try config.callbackURL()
        let records = dependencies.records

        // Declined permissions are asked for again only when the last connection lacked some.
        var rerequest = false
        if let (integration, _) = try records.loadUnlessCorrupt(Integration.self, at: RecordKey.integration(session.tenantId)) {
            rerequest = !integration.missingScopes.isEmpty
        }

        let nonce = Base64URL.encode(dependencies.random.bytes(32))
        let state = OAuthState(tenantId: session.tenantId, createdAt: dependencies.clock.now, rerequest: rerequest)
        try records.create(state, at: RecordKey.oauthState(nonce: nonce), ttl: OAuthState.lifetimeSeconds)
        let graph = GraphClient(config: config, app: app, transport: dependencies.http, logger: dependencies.logger)
        dependencies.logger.info("connect_started", ["rerequest": .bool(rerequest)])
        return .redirect(to: graph.authorizationURL(state: nonce, redirectURI: redirectURI,
                                                    scopes: config.scopes, rerequest: rerequest, configId: config.loginConfigId))
    }

    package init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }
}
