import CompassMeta
import CompassPlatform
import CompassStorage

/// What a handler may use; everything it touches outside its own logic comes through here.
package struct Dependencies: Sendable {
    package var config: Config
    package var store: any KeyValueStore
    package var http: any HTTPTransport
    package var clock: any Clock
    package var random: any RandomSource
    package var logger: Logger
    /// What this request changed of the figures operators watch, written once at its end.
    package var metrics: Metrics

    package init(
        config: Config, store: any KeyValueStore, http: any HTTPTransport, clock: any Clock,
        random: any RandomSource, logger: Logger, metrics: Metrics = Metrics()
    ) {
        self.config = config
        self.store = store
        self.http = http
        self.clock = clock
        self.random = random
        self.logger = logger
        self.metrics = metrics
    }

    /// The request's figures added to the store's (`MetricsLedger`): never a failure of the
    /// request, a line in the log when the store cannot take them.
    package func flushMetrics() {
        do {
            try MetricsLedger(store: store).flush(metrics, now: clock.now, random: random)
        } catch {
            logger.warn("metrics_not_written", ["error": .string("\(error)")])
        }
    }

    package var records: RecordStore { RecordStore(store: store) }

    package func graph() throws(ConfigError) -> GraphClient {
        var client = GraphClient(settings: config.meta, app: try config.meta.app(), transport: http, logger: logger)
        client.metrics = metrics
        return client
    }

    package func cipher() throws(ConfigError) -> CredentialCipher {
        CredentialCipher(keys: try config.platform.credentialCipher(), random: random)
    }

    /// The tenant's Meta token in plaintext, registered with the logger so that it never
    /// reaches a log line. Opened with the tenant of the record's key, not the tenant the record
    /// names: a record copied under another tenant's key does not decrypt.
    package func openToken(_ credential: IntegrationCredential, tenant: String) throws -> String {
        let token = try cipher().open(credential.token, context: IntegrationCredential.sealContext(tenantId: tenant))
        logger.redact(token)
        return token
    }

    /// The tenant of a valid session, or 401. For unsafe methods authenticated by cookie, a
    /// request from another site is refused (403): the session cookie alone is no proof of intent.
    package func authenticate(_ request: CGIRequest) throws -> Session {
        let verifier = SessionVerifier(
            secret: try config.platform.sessionSecret(), audience: config.platform.jwtAudience, issuer: config.platform.jwtIssuer)
        let session: Session
        do {
            session = try verifier.session(for: request, now: clock.now)
        } catch {
            logger.info("session_rejected", ["reason": .string(error.rawValue)])
            throw APIError.unauthorized
        }
        logger.setTenant(session.tenantId)
        if session.fromCookie && !["GET", "HEAD"].contains(request.method) {
            try checkSameOrigin(request)
        }
        return session
    }

    /// A cookie-authenticated change must show that it comes from Compass's own pages: an
    /// `Origin` equal to Compass's origin or, without one, `Sec-Fetch-Site: same-origin`.
    /// `Origin: null` (sandboxed frames, some redirects) and neither header are refused.
    private func checkSameOrigin(_ request: CGIRequest) throws {
        let expected = Self.origin(of: try config.meta.redirectBase())
        let sameOrigin: Bool
        if let origin = request.header("origin") {
            sameOrigin = origin == expected
        } else {
            sameOrigin = request.header("sec-fetch-site") == "same-origin"
        }
        guard sameOrigin else { throw APIError(403, "cross_site_request", "Cross-site requests are not accepted.") }
    }

    /// `scheme://host[:port]` of a URL.
    package static func origin(of url: String) -> String? {
        guard let schemeEnd = url.firstRange(of: "://") else { return nil }
        let rest = url[schemeEnd.upperBound...]
        let host = rest.prefix { $0 != "/" }
        return String(url[..<schemeEnd.upperBound]) + host
    }
}
