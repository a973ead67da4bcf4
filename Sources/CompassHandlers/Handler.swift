import CompassPlatform

/// One route: a value that turns a request into a response with the dependencies it was given.
/// It never reads the process (environment, working directory, descriptors): a host adapter
/// (CompassHosts) builds the request, calls `respond`, and writes the answer, once per process
/// under CGI or many times in a process that stays warm.
package protocol Handler: Sendable {
    /// The function's name in functions.json, its executable's name and the `function` of its log lines.
    static var name: String { get }
    static var methods: [String] { get }
    /// Where the function is mounted (functions.json `paths`): a host that routes by path sends
    /// only these; Lambda's events carry any path, and the host answers 404 outside them.
    static var paths: [String] { get }
    /// Largest body this route reads (functions.json `maxBodyBytes`).
    static var maxBodyBytes: Int { get }
    /// A body, when there is one, must be `Content-Type: application/json` (else 415): a form or
    /// text/plain body is what a cross-site page can send without asking.
    static var takesJSONBody: Bool { get }
    /// Answers paths beyond its mount (`PATH_INFO`); a route does not: `/settings/extra` is 404.
    static var servesSubpaths: Bool { get }
    var dependencies: Dependencies { get }
    init(dependencies: Dependencies)
    func handle(_ request: CGIRequest) throws -> CGIResponse
}

/// A handler that also runs without a request: `refresh-cron` started by cron. The host prints
/// the summary as JSON, or the error body and exits non-zero.
package protocol DirectlyRunnable: Handler {
    associatedtype Summary: Encodable & Sendable
    func run() throws -> Summary
}

extension Handler {
    package static var maxBodyBytes: Int { 64 * 1024 }
    package static var takesJSONBody: Bool { false }
    package static var servesSubpaths: Bool { false }

    /// HEAD is served wherever GET is.
    package static func allows(_ method: String) -> Bool {
        methods.contains(method) || (method == "HEAD" && methods.contains("GET"))
    }

    /// The whole exchange in-process: the method check, the handler, and any error answered by
    /// the one rule (`APIError.answer(for:logger:)`).
    package func respond(to request: CGIRequest) -> CGIResponse {
        guard Self.servesSubpaths || request.pathInfo.isEmpty else { return .error(.notFound) }
        guard Self.allows(request.method) else { return .error(.methodNotAllowed(Self.methods)) }
        if Self.takesJSONBody && !request.body.isEmpty && !request.hasJSONContentType {
            return .error(.unsupportedMediaType)
        }
        let response: CGIResponse
        do {
            response = try handle(request)
        } catch {
            response = .error(APIError.answer(for: error, logger: dependencies.logger))
        }
        dependencies.flushMetrics()
        return response
    }
}
