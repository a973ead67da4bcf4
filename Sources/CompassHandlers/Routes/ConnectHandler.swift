import CompassMeta
import CompassPlatform
import CompassStorage

/// GET /api/connect/meta: a fresh single-use state bound to the tenant (`OAuthStates`: signed,
/// nothing stored), then Meta's dialog.
package struct ConnectHandler: Handler {
    package static let name = "connect"
    package static let methods = ["GET"]
    package static let paths = ["/api/connect/meta"]
    package let dependencies: Dependencies

    package func handle(_ request: CGIRequest) throws -> CGIResponse {
        let session = try dependencies.authenticate(request)
        let config = dependencies.config
        let app = try config.meta.app()
        let redirectURI = try config.meta.callbackURL()
        let states = OAuthStates(sessionSecret: try config.platform.sessionSecret())

        // Declined permissions are asked for again only when the last connection lacked some.
        // Only that field is read, with the one-pass parser: decoding the whole record through
        // Decodable costs a start-up of its own (type metadata, a calendar for the dates). A
        // record that cannot be read counts as absent, as for any caller about to replace it.
        var rerequest = false
        if let found = try dependencies.store.get(RecordKey.integration(session.tenantId)),
            let missing = (try? JSONParser.parse(found.value))?["missingScopes"]?.array
        {
            rerequest = !missing.isEmpty
        }

        let state = states.issue(tenant: session.tenantId, nonce: dependencies.random.bytes(16), at: dependencies.clock.now)
        let graph = GraphClient(settings: config.meta, app: app, transport: dependencies.http, logger: dependencies.logger)
        dependencies.logger.info("connect_started", ["rerequest": .bool(rerequest)])
        return .redirect(
            to: graph.authorizationURL(
                state: state, redirectURI: redirectURI,
                scopes: config.meta.scopes, rerequest: rerequest, configId: config.meta.loginConfigId))
    }

    package init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }
}
