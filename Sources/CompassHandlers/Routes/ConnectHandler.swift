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
        // A record that cannot be read counts as absent, as for any caller about to replace it.
        let rerequest = try dependencies.store.get(RecordKey.integration(session.tenantId)).map { Self.lacksScopes($0.value) } ?? false

        let state = states.issue(tenant: session.tenantId, nonce: dependencies.random.bytes(16), at: dependencies.clock.now)
        let graph = GraphClient(settings: config.meta, app: app, transport: dependencies.http, logger: dependencies.logger)
        dependencies.logger.info("connect_started", ["rerequest": .bool(rerequest)])
        return .redirect(
            to: graph.authorizationURL(
                state: state, redirectURI: redirectURI,
                scopes: config.meta.scopes, rerequest: rerequest, configId: config.meta.loginConfigId))
    }

    /// Whether an integration record's `missingScopes` is an array with a scope in it. Only that
    /// member is read, from the token tape: decoding the record through Decodable costs a
    /// start-up of its own (type metadata, a calendar for the dates), and parsing it into values
    /// (a dictionary an object, its ad accounts and pixels) was a fifth of a warm request's time.
    /// Text the tape declines (an escape, say) goes to the parser, whose reading stands; a record
    /// that neither reads is false.
    static func lacksScopes(_ record: [UInt8]) -> Bool {
        guard let tape = JSONTape(record) else {
            return ((try? JSONParser.parse(record))?["missingScopes"]?.array).map { !$0.isEmpty } ?? false
        }
        return tape.withView { view in
            guard view.tokens[0].kind == .object else { return false }
            for (name, value) in view.members(of: 0) where view.isString(name, "missingScopes") {
                return view.tokens[value].kind == .array && view.tokens[value].count > 0
            }
            return false
        }
    }

    package init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }
}
