import CompassHandlers
import CompassPlatform

/// The development functions (Graph sandbox, dev console) serve only a deployment whose Graph
/// *is* the sandbox, as `scripts/serve` sets it up without a Meta app. With a real Meta app they
/// answer 404 to everything, whatever `COMPASS_DEV_CONSOLE` says: a dev login hands out a
/// session for any tenant.
enum DevelopmentGate {
    static func check(_ dependencies: Dependencies) throws(APIError) {
        let config = dependencies.config
        guard let sandbox = config.development.sandboxBaseURL, sandbox == config.meta.graphURL else {
            dependencies.logger.warn(
                "development_function_refused",
                [
                    "reason": "META_GRAPH_URL is not the Graph sandbox (SANDBOX_BASE_URL): a real Meta app is configured"
                ])
            throw APIError(404, "not_found", "Not found.")
        }
    }
}
