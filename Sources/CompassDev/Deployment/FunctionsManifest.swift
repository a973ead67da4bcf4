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
        package var servesSubpaths: Bool { name == "graph-sandbox" }

        package init(name: String, executable: String, planned: Bool?, methods: [String], paths: [String], schedule: String?,
                     timeoutSeconds: Int, maxBodyBytes: Int, environment: [String]) {
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
        Function(name: "graph-sandbox", executable: "graph-sandbox", planned: nil, methods: ["GET", "POST", "DELETE"],
                 paths: ["/graph"], schedule: nil, timeoutSeconds: 60, maxBodyBytes: 32 << 20,
                 environment: ["META_APP_ID", "META_APP_SECRET", "META_GRAPH_URL", "SANDBOX_STATE_DIR", "SANDBOX_BASE_URL",
                               "STORE_URL", "LOG_LEVEL"]),
        Function(name: "dev-console", executable: "dev-console", planned: nil, methods: ["GET", "POST"],
                 paths: ["/", "/settings/integrations", "/dev/login", "/dev/logout"], schedule: nil, timeoutSeconds: 10,
                 maxBodyBytes: 64 << 10,
                 environment: ["COMPASS_JWT_SECRET", "COMPASS_DEV_CONSOLE", "OAUTH_REDIRECT_BASE_URL", "META_GRAPH_URL",
                               "SANDBOX_BASE_URL", "STORE_URL", "LOG_LEVEL"]),
    ]

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

/// A lighttpd configuration serving every built function of the manifest as CGI.
package struct LighttpdConfig {
    package var manifest: FunctionsManifest
    package var binDirectory: String
    package var dataDirectory: String
    package var port: Int
    /// Values for the functions' variables; each function gets only those it lists.
    package var environment: [String: String]
    /// Mount the Graph sandbox at /graph and the development console.
    package var sandbox: Bool
    /// Keep the programs warm under mod_fastcgi (lighttpd spawns them) instead of a process per request.
    package var fastCGI: Bool = false

    package init(manifest: FunctionsManifest, binDirectory: String, dataDirectory: String, port: Int,
                 environment: [String: String], sandbox: Bool, fastCGI: Bool = false) {
        self.manifest = manifest
        self.binDirectory = binDirectory
        self.dataDirectory = dataDirectory
        self.port = port
        self.environment = environment
        self.sandbox = sandbox
        self.fastCGI = fastCGI
    }

    package func render() -> String {
        var lines = [
            "# Generated from functions.json by compass-dev lighttpd-config. Do not edit.",
            fastCGI ? #"server.modules += ("mod_alias", "mod_fastcgi", "mod_setenv", "mod_accesslog")"#
                : #"server.modules += ("mod_alias", "mod_cgi", "mod_setenv", "mod_accesslog")"#,
            #"server.bind = "127.0.0.1""#,
            "server.port = \(port)",
            "server.document-root = \(quote(dataDirectory + "/www"))",
            "server.upload-dirs = (\(quote(dataDirectory + "/tmp")))",
            #"server.errorlog = "/dev/stderr""#,
            #"accesslog.filename = "/dev/stderr""#,
            #"server.tag = "compass""#,
            "server.max-request-size = 1024",
            #"mimetype.assign = (".html" => "text/html; charset=utf-8")"#,
            // httpoxy: a `Proxy` request header must never become HTTP_PROXY for a handler.
            #"setenv.set-request-header = ("Proxy" => "")"#,
        ]
        for function in manifest.served(sandbox: sandbox) {
            for path in function.paths {
                // A little above the program's own limit: a body past it gets the program's JSON 413.
                let match = function.servesSubpaths ? "=~ \(quote("^" + path + "(/|$)"))" : "== \(quote(path))"
                lines.append(block(match: match, alias: path, executable: function.executable,
                                   timeout: function.timeoutSeconds, variables: function.environment,
                                   maxRequestKB: function.maxBodyBytes / 1024 + 64))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func block(match: String, alias: String, executable: String, timeout: Int, variables: [String],
                       maxRequestKB: Int) -> String {
        var env = variables.compactMap { name in environment[name].map { "\(quote(name)) => \(quote($0))" } }
        env.append(#""SWIFT_BACKTRACE" => "enable=no""#)
        if fastCGI {
            // One process group per mount (two per function with two paths), each on its own socket;
            // the programs see only their own variables (bin-copy-environment copies none).
            let socket = dataDirectory + "/fastcgi/" + executable + "-" + Hex.encode(Crypto.sha256(alias).prefix(4)) + ".sock"
            return """
                $HTTP["url"] \(match) {
                    server.max-request-size = \(maxRequestKB)
                    fastcgi.server = (\(quote(alias)) => ((
                        "socket" => \(quote(socket)),
                        "bin-path" => \(quote(binDirectory + "/" + executable)),
                        "bin-environment" => (\(env.joined(separator: ", "))),
                        "bin-copy-environment" => ("PATH"),
                        "max-procs" => 2,
                        "check-local" => "disable"
                    )))
                }
                """
        }
        return """
            $HTTP["url"] \(match) {
                alias.url = (\(quote(alias)) => \(quote(binDirectory + "/" + executable)))
                cgi.assign = ("" => "")
                cgi.limits = ("read-timeout" => \(timeout), "write-timeout" => \(timeout))
                server.max-request-size = \(maxRequestKB)
                setenv.add-environment = (\(env.joined(separator: ", ")))
            }
            """
    }

    /// A lighttpd string literal.
    private func quote(_ text: String) -> String {
        "\"" + text.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
    }
}
