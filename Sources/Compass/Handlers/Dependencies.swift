/// What a handler may use; everything it touches outside its own logic comes through here.
struct Dependencies: Sendable {
    var config: Config
    var store: any KeyValueStore
    var http: any HTTPTransport
    var clock: any Clock
    var random: any RandomSource
    var logger: Logger

    var records: RecordStore { RecordStore(store: store) }

    func graph() throws(Config.Error) -> GraphClient {
        GraphClient(config: config, app: try config.metaApp(), transport: http, logger: logger)
    }

    func cipher() throws(Config.Error) -> CredentialCipher {
        CredentialCipher(keys: try config.credentialCipher(), random: random)
    }

    /// The tenant of a valid session, or 401. For unsafe methods authenticated by cookie, a
    /// request from another site is refused (403): the session cookie alone is no proof of intent.
    func authenticate(_ request: CGIRequest) throws -> Session {
        let verifier = SessionVerifier(secret: try config.sessionSecret())
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

    private func checkSameOrigin(_ request: CGIRequest) throws {
        if request.header("sec-fetch-site") == "cross-site" {
            throw APIError(403, "cross_site_request", "Cross-site requests are not accepted.")
        }
        if let origin = request.header("origin"), origin != "null" {
            let allowed = try config.redirectBase()
            guard let expected = Self.origin(of: allowed), origin == expected else {
                throw APIError(403, "cross_site_request", "Cross-site requests are not accepted.")
            }
        }
    }

    /// `scheme://host[:port]` of a URL.
    static func origin(of url: String) -> String? {
        guard let schemeEnd = url.firstRange(of: "://") else { return nil }
        let rest = url[schemeEnd.upperBound...]
        let host = rest.prefix { $0 != "/" }
        return String(url[..<schemeEnd.upperBound]) + host
    }

    /// Converts a store failure into the client-facing error (logged with detail).
    func storeFailure(_ error: StoreError, during step: String) -> APIError {
        logger.error("store_failed", ["step": .string(step), "error": .string("\(error)")])
        switch error {
        case .corrupt:
            return APIError(500, "store_record_invalid", "A stored record could not be read; an operator has been told.")
        default:
            return .storeUnavailable
        }
    }
}

/// One route: a value that turns a request into a response, with injected dependencies.
protocol Handler: Sendable {
    static var name: String { get }
    static var methods: [String] { get }
    /// Largest body this route reads.
    static var maxBodyBytes: Int { get }
    init(dependencies: Dependencies)
    func handle(_ request: CGIRequest) throws -> CGIResponse
}

extension Handler {
    static var maxBodyBytes: Int { 64 * 1024 }

    /// The whole exchange in-process: method check, the handler, and errors turned into JSON.
    func respond(to request: CGIRequest, logger: Logger) -> CGIResponse {
        guard Self.methods.contains(request.method) || (request.method == "HEAD" && Self.methods.contains("GET")) else {
            return .error(.methodNotAllowed(Self.methods))
        }
        do {
            return try handle(request)
        } catch let error as APIError {
            return .error(error)
        } catch let error as Config.Error {
            logger.error("misconfigured", ["variable": .string(error.variable), "problem": .string(error.problem)])
            return .error(error.apiError)
        } catch let error as StoreError {
            logger.error("store_failed", ["error": .string("\(error)")])
            return .error(.storeUnavailable)
        } catch {
            logger.error("unexpected_error", ["error": .string("\(type(of: error))")])
            return .error(.internalError)
        }
    }
}
