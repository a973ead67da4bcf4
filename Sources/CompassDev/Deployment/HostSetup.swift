import CompassPlatform

/// What every host's configuration is generated from: functions.json, where the programs and
/// the data are, the port, the values of the functions' variables, and how the programs run.
/// `lighttpdConfig()`, `nginxConfig()` and `apacheConfig()` render it for each host.
package struct HostSetup: Sendable {
    package var manifest: FunctionsManifest
    package var binDirectory: String
    package var dataDirectory: String
    package var port: Int
    /// Values for the functions' variables; each function gets only those it lists.
    package var environment: [String: String]
    /// Keep the programs warm as FastCGI processes instead of a process per request.
    package var fastCGI: Bool
    /// Mount the Graph sandbox at /graph and the development console.
    package var sandbox: Bool

    /// FastCGI responders a function (lighttpd's `max-procs`, `spawn-fcgi -F` in scripts/serve):
    /// one serves one connection at a time and gives a slow or stalled one up only after
    /// `FASTCGI_REQUEST_SECONDS`, so the others answer meanwhile.
    package static let responders = 4

    package init(
        manifest: FunctionsManifest, binDirectory: String, dataDirectory: String, port: Int,
        environment: [String: String], fastCGI: Bool = false, sandbox: Bool = false
    ) {
        self.manifest = manifest
        self.binDirectory = binDirectory
        self.dataDirectory = dataDirectory
        self.port = port
        self.environment = environment
        self.fastCGI = fastCGI
        self.sandbox = sandbox
    }

    /// The functions the host serves.
    package var functions: [FunctionsManifest.Function] { manifest.served(sandbox: sandbox) }

    /// Where a function's FastCGI processes listen, started by a process manager (nginx, Apache).
    package func socket(for function: FunctionsManifest.Function) -> String {
        dataDirectory + "/fastcgi/" + function.executable + ".sock"
    }

    /// The one fcgiwrap that runs every program as CGI behind nginx.
    package var fcgiwrapSocket: String { dataDirectory + "/fcgiwrap.sock" }

    /// A string as lighttpd, Apache and nginx read one: in double quotes, `"` and `\` escaped.
    func quoted(_ text: String) -> String {
        "\"" + text.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
    }
}
