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
    }

    package var description: String?
    package var functions: [Function]

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
        for function in manifest.functions where function.planned != true {
            for path in function.paths {
                // A little above the program's own limit: a body past it gets the program's JSON 413.
                lines.append(block(match: "== \(quote(path))", alias: path, executable: function.executable,
                                   timeout: function.timeoutSeconds, variables: function.environment,
                                   maxRequestKB: function.maxBodyBytes / 1024 + 64))
            }
        }
        if sandbox {
            // META_GRAPH_URL: the development functions serve only when the Graph is the sandbox.
            let graphVariables = ["META_APP_ID", "META_APP_SECRET", "META_GRAPH_URL", "SANDBOX_STATE_DIR", "SANDBOX_BASE_URL", "STORE_URL",
                                  "LOG_LEVEL"]
            lines.append(block(match: #"=~ "^/graph(/|$)""#, alias: "/graph", executable: "graph-sandbox", timeout: 60,
                               variables: graphVariables, maxRequestKB: 32 * 1024))
            let consoleVariables = ["COMPASS_JWT_SECRET", "COMPASS_DEV_CONSOLE", "OAUTH_REDIRECT_BASE_URL", "META_GRAPH_URL",
                                    "SANDBOX_BASE_URL", "STORE_URL", "LOG_LEVEL"]
            for path in ["/", "/settings/integrations", "/dev/login", "/dev/logout"] {
                lines.append(block(match: "== \(quote(path))", alias: path, executable: "dev-console", timeout: 10,
                                   variables: consoleVariables, maxRequestKB: 64))
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
