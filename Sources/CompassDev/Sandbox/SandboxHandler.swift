import CompassHandlers
import CompassHosts
import CompassMeta
import CompassPlatform
import CompassStorage

/// The Graph sandbox as a CGI function, mounted by `scripts/serve` when no Meta app is set.
package struct SandboxHandler: Handler {
    package static let name = "graph-sandbox"
    package static let methods = ["GET", "POST", "DELETE"]
    package static let paths = ["/graph"]
    package static let maxBodyBytes = 32 << 20
    package static let servesSubpaths = true
    package let dependencies: Dependencies

    package func handle(_ request: CGIRequest) throws -> CGIResponse {
        try DevelopmentGate.check(dependencies)
        let config = dependencies.config
        guard let folder = config.development.sandboxStateDirectory else {
            throw ConfigError(variable: "SANDBOX_STATE_DIR", problem: "is not set")
        }
        guard let base = config.development.sandboxBaseURL else { throw ConfigError(variable: "SANDBOX_BASE_URL", problem: "is not set") }
        let app = try config.meta.app()
        let sandbox = GraphSandbox(
            store: try FileStore(root: folder, durable: false), appId: app.id, appSecret: app.secret, baseURL: base,
            clock: dependencies.clock, random: dependencies.random, latencyMilliseconds: config.development.sandboxLatencyMilliseconds)
        // The path below the sandbox's mount point (`/graph` in `http://host/graph`).
        let mount = Self.path(of: base)
        let path = request.path.hasPrefix(mount) ? String(request.path.dropFirst(mount.count)) : request.path
        let answer = sandbox.handle(
            .init(
                method: request.method, path: path.isEmpty ? "/" : path,
                query: request.query, body: request.body))
        return CGIResponse(
            status: answer.status,
            headers: answer.headers.map { name, value in
                (name.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: "-"), value)
            }, body: answer.body)
    }

    package static func path(of url: String) -> String {
        guard let scheme = url.firstRange(of: "://") else { return "" }
        let rest = url[scheme.upperBound...]
        guard let slash = rest.firstIndex(of: "/") else { return "" }
        return String(rest[slash...])
    }

    package init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }
}
