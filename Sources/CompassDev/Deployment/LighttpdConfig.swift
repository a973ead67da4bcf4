import CompassPlatform

/// A lighttpd configuration serving every function as CGI (`mod_cgi`) or FastCGI (`mod_fastcgi`
/// spawning the programs itself, two processes per mount).
extension HostSetup {
    package func lighttpdConfig() -> String {
        var lines = [
            "# Generated from functions.json by compass-dev lighttpd-config. Do not edit.",
            fastCGI
                ? #"server.modules += ("mod_alias", "mod_fastcgi", "mod_setenv", "mod_accesslog")"#
                : #"server.modules += ("mod_alias", "mod_cgi", "mod_setenv", "mod_accesslog")"#,
            #"server.bind = "127.0.0.1""#,
            "server.port = \(port)",
            "server.document-root = \(quoted(dataDirectory + "/www"))",
            "server.upload-dirs = (\(quoted(dataDirectory + "/tmp")))",
            #"server.errorlog = "/dev/stderr""#,
            #"accesslog.filename = "/dev/stderr""#,
            // The path without its query: an OAuth code and state, and the Graph sandbox's
            // access tokens and app secret, travel in query strings and stay out of the log.
            #"accesslog.format = "%h %V %u %t \"%m %U %H\" %>s %b""#,
            #"server.tag = "compass""#,
            "server.max-request-size = 1024",
            #"mimetype.assign = (".html" => "text/html; charset=utf-8")"#,
            // A control character encoded in the query (`?dryRun=%0B`) reaches the function, which
            // checks every value and answers JSON (openapi.yaml), instead of lighttpd's HTML 400.
            #"server.http-parseopts = ("url-ctrls-reject" => "disable")"#,
            // httpoxy: a `Proxy` request header must never become HTTP_PROXY for a handler.
            #"setenv.set-request-header = ("Proxy" => "")"#,
        ]
        for function in functions {
            for path in function.paths {
                // A little above the program's own limit: a body past it gets the program's JSON 413.
                let match = function.servesSubpaths ? "=~ \(quoted("^" + path + "(/|$)"))" : "== \(quoted(path))"
                lines.append(
                    lighttpdBlock(
                        match: match, alias: path, executable: function.executable,
                        timeout: function.timeoutSeconds, variables: function.environment,
                        maxRequestKB: function.maxBodyBytes / 1024 + 64))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func lighttpdBlock(
        match: String, alias: String, executable: String, timeout: Int, variables: [String],
        maxRequestKB: Int
    ) -> String {
        var env = variables.compactMap { name in environment[name].map { "\(quoted(name)) => \(quoted($0))" } }
        env.append(#""SWIFT_BACKTRACE" => "enable=no""#)
        if fastCGI {
            // One process group per mount (two per function with two paths), each on its own socket;
            // the programs see only their own variables (bin-copy-environment copies none).
            let socket = dataDirectory + "/fastcgi/" + executable + "-" + Hex.encode(Crypto.sha256(alias).prefix(4)) + ".sock"
            return """
                $HTTP["url"] \(match) {
                    server.max-request-size = \(maxRequestKB)
                    fastcgi.server = (\(quoted(alias)) => ((
                        "socket" => \(quoted(socket)),
                        "bin-path" => \(quoted(binDirectory + "/" + executable)),
                        "bin-environment" => (\(env.joined(separator: ", "))),
                        "bin-copy-environment" => ("PATH"),
                        "max-procs" => \(Self.responders),
                        "check-local" => "disable"
                    )))
                }
                """
        }
        return """
            $HTTP["url"] \(match) {
                alias.url = (\(quoted(alias)) => \(quoted(binDirectory + "/" + executable)))
                cgi.assign = ("" => "")
                cgi.limits = ("read-timeout" => \(timeout), "write-timeout" => \(timeout))
                server.max-request-size = \(maxRequestKB)
                setenv.add-environment = (\(env.joined(separator: ", ")))
            }
            """
    }
}
