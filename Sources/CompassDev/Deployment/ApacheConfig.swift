import CompassPlatform

/// An Apache 2.4 configuration serving every built function of the manifest, generated from
/// `functions.json` alone. CGI (`mod_cgid`): each path matched exactly (`ScriptAliasMatch` with
/// anchors: `/api/connect/meta` is a prefix of every other route), `CGIPassAuth On` so Bearer
/// sessions reach the programs, the function's variables with `SetEnv`, its timeout and body
/// limit. FastCGI (`mod_proxy_fcgi`): each path proxied to the function's socket
/// (`fastcgi/<function>.sock`), where its executable stays warm, started by a process manager
/// with its variables in the environment.
extension HostSetup {
    /// `user`: the user Apache runs CGI programs as.
    package func apacheConfig(user: String = "www-data", modules: String = "/usr/lib/apache2/modules") -> String {
        var lines = [
            "# Generated from functions.json by compass-dev apache-config. Do not edit.",
            "ServerRoot \(quoted(dataDirectory))",
            "Listen 127.0.0.1:\(port)",
            "ServerName 127.0.0.1",
            "PidFile \(quoted(dataDirectory + "/apache.pid"))",
            "ErrorLog \(quoted(dataDirectory + "/apache-error.log"))",
            "LogLevel warn",
            "User \(user)",
            "Group \(user)",
            "LoadModule mpm_event_module \(modules)/mod_mpm_event.so",
            "LoadModule authz_core_module \(modules)/mod_authz_core.so",
            "LoadModule alias_module \(modules)/mod_alias.so",
            "LoadModule env_module \(modules)/mod_env.so",
            "LoadModule headers_module \(modules)/mod_headers.so",
        ]
        if fastCGI {
            lines += ["LoadModule proxy_module \(modules)/mod_proxy.so", "LoadModule proxy_fcgi_module \(modules)/mod_proxy_fcgi.so"]
        } else {
            lines += ["LoadModule cgid_module \(modules)/mod_cgid.so", "ScriptSock \(quoted(dataDirectory + "/cgid.sock"))"]
        }
        // httpoxy: a `Proxy` request header must never become HTTP_PROXY for a program.
        lines.append("RequestHeader unset Proxy early")
        for function in functions {
            for path in function.paths { lines += apacheBlock(path, function) }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func apacheBlock(_ path: String, _ function: FunctionsManifest.Function) -> [String] {
        let pattern = "^" + path.replacing(".", with: "\\.") + (function.servesSubpaths ? "(/.*)?$" : "$")
        var lines: [String] = []
        if fastCGI {
            // A worker name of its own per function: Apache shares the connections of workers
            // whose names are prefixes of each other (`fcgi://localhost/...`).
            lines.append(
                "ProxyPassMatch \(quoted(pattern)) \(quoted("unix:" + socket(for: function) + "|fcgi://compass-" + function.executable + "/")) timeout=\(function.timeoutSeconds)"
            )
        } else {
            lines.append("ScriptAliasMatch \(quoted(pattern)) \(quoted(binDirectory + "/" + function.executable))")
        }
        lines.append("<LocationMatch \(quoted(pattern))>")
        // A little above the program's own limit: a larger body gets the program's JSON 413.
        lines.append("    LimitRequestBody \(function.maxBodyBytes + 64 * 1024)")
        // Bearer sessions and the cron secret travel in Authorization, which Apache keeps from
        // programs unless told (CGI and mod_proxy_fcgi alike).
        lines.append("    CGIPassAuth On")
        if fastCGI {
            lines.append("    ProxyFCGISetEnvIf \"true\" SCRIPT_NAME \"%{REQUEST_URI}\"")
            lines.append("    ProxyFCGISetEnvIf \"true\" !PATH_INFO")
            lines.append("    ProxyFCGISetEnvIf \"true\" !SCRIPT_FILENAME")
        } else {
            lines.append("    CGIDScriptTimeout \(function.timeoutSeconds)")
            lines.append("    SetEnv SWIFT_BACKTRACE enable=no")
            for name in function.environment {
                if let value = environment[name] { lines.append("    SetEnv \(name) \(quoted(value))") }
            }
        }
        lines.append("</LocationMatch>")
        return lines
    }
}
