import CompassHandlers
import CompassHosts
import CompassMeta
import CompassPlatform
import CompassStorage

/// `functions.json`: every function, its routes and what it reads. Host configurations are
/// generated from it, never written by hand.
package struct FunctionsManifest: Codable, Sendable {
    package struct Function: Codable, Sendable {
        package var name: String
        package var executable: String
        package var planned: Bool?
        package var methods: [String]
        package var paths: [String]
        package var schedule: String?
        package var timeoutSeconds: Int
        /// The largest request body the function reads; a larger one is answered 413.
        package var maxBodyBytes: Int
        package var environment: [String]

        /// Paths below this mount are its own (the Graph sandbox), not only the mount itself.
        package var servesSubpaths: Bool { name == SandboxHandler.name }

        package init(
            name: String, executable: String, planned: Bool?, methods: [String], paths: [String], schedule: String?,
            timeoutSeconds: Int, maxBodyBytes: Int, environment: [String]
        ) {
            self.name = name
            self.executable = executable
            self.planned = planned
            self.methods = methods
            self.paths = paths
            self.schedule = schedule
            self.timeoutSeconds = timeoutSeconds
            self.maxBodyBytes = maxBodyBytes
            self.environment = environment
        }
    }

    package var description: String?
    package var functions: [Function]

    /// The development functions `scripts/serve` adds without a Meta app: the Graph sandbox,
    /// mounted at `/graph` (everything below it), and the development console. The variables
    /// include META_GRAPH_URL and SANDBOX_BASE_URL: they serve only when the Graph is the sandbox.
    package static let development: [Function] = [
        function(
            SandboxHandler.self, timeoutSeconds: 60,
            environment: [
                "META_APP_ID", "META_APP_SECRET", "META_GRAPH_URL", "SANDBOX_STATE_DIR", "SANDBOX_BASE_URL",
                "SANDBOX_LATENCY_MS", "STORE_URL", "LOG_LEVEL",
            ]),
        function(
            DevConsoleHandler.self, timeoutSeconds: 10,
            environment: [
                "COMPASS_JWT_SECRET", "COMPASS_DEV_CONSOLE", "OAUTH_REDIRECT_BASE_URL", "META_GRAPH_URL",
                "SANDBOX_BASE_URL", "STORE_URL", "LOG_LEVEL",
            ]),
    ]

    /// A development function as its handler declares it: name, executable, methods, paths, body limit.
    private static func function<H: Handler>(
        _ handler: H.Type, timeoutSeconds: Int,
        environment: [String]
    ) -> Function {
        Function(
            name: H.name, executable: H.name, planned: nil, methods: H.methods, paths: H.paths, schedule: nil,
            timeoutSeconds: timeoutSeconds, maxBodyBytes: H.maxBodyBytes, environment: environment)
    }

    /// The functions a host serves: the manifest's built ones, and with `sandbox` the development ones.
    package func served(sandbox: Bool) -> [Function] {
        functions.filter { $0.planned != true } + (sandbox ? Self.development : [])
    }

    package static func load(path: String) throws -> FunctionsManifest {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw APIError(500, "manifest_missing", "Cannot read \(path).")
        }
        return try JSON.decode(FunctionsManifest.self, from: Array(data))
    }
}
