import CompassPlatform

/// An nginx configuration serving every built function of the manifest, generated from
/// `functions.json` alone. CGI: every route goes to one fcgiwrap (`fcgiwrap.sock` in the data
/// folder), which runs the executable `SCRIPT_FILENAME` names, a process per request; the
/// function's variables travel as FastCGI parameters. FastCGI: each function has its own
/// socket (`fastcgi/<function>.sock`), where its executable, started by a process manager with
/// its variables in the environment, stays warm.
extension HostSetup {
    package func nginxConfig() -> String {
        var lines = [
            "# Generated from functions.json by compass-dev nginx-config. Do not edit.",
            "pid \(dataDirectory)/nginx.pid;",
            // At `crit`: nginx's errors quote the request line, with the callback's code and state.
            "error_log \(dataDirectory)/nginx-error.log crit;",
            "events { worker_connections 512; }",
            "http {",
            "    access_log off;",
            "    geo $dollar { default \"$\"; }",
            "    client_body_temp_path \(dataDirectory)/tmp/body;",
            "    fastcgi_temp_path \(dataDirectory)/tmp/fastcgi;",
            "    proxy_temp_path \(dataDirectory)/tmp/proxy;",
            "    uwsgi_temp_path \(dataDirectory)/tmp/uwsgi;",
            "    scgi_temp_path \(dataDirectory)/tmp/scgi;",
            "    server {",
            "        listen 127.0.0.1:\(port);",
        ]
        for function in functions {
            for path in function.paths {
                lines += nginxLocation(path, function)
            }
        }
        lines += ["    }", "}"]
        return lines.joined(separator: "\n") + "\n"
    }

    private func nginxLocation(_ path: String, _ function: FunctionsManifest.Function) -> [String] {
        var block = [
            function.servesSubpaths ? "        location ^~ \(path)/ {" : "        location = \(path) {",
            // A little above the program's own limit: a larger body gets the program's JSON 413.
            "            client_max_body_size \(function.maxBodyBytes + 64 * 1024);",
            "            fastcgi_read_timeout \(function.timeoutSeconds)s;",
            "            fastcgi_pass unix:\(fastCGI ? socket(for: function) : fcgiwrapSocket);",
        ]
        let parameters: [(String, String)] = [
            ("GATEWAY_INTERFACE", "CGI/1.1"), ("SERVER_PROTOCOL", "$server_protocol"), ("REQUEST_METHOD", "$request_method"),
            ("QUERY_STRING", "$query_string"), ("CONTENT_TYPE", "$content_type"), ("CONTENT_LENGTH", "$content_length"),
            ("SCRIPT_NAME", "$uri"), ("REQUEST_URI", "$request_uri"), ("REMOTE_ADDR", "$remote_addr"),
            ("SERVER_NAME", "$server_name"), ("SERVER_PORT", "$server_port"),
            // httpoxy: a `Proxy` request header must never become HTTP_PROXY for a program.
            ("HTTP_PROXY", ""),
        ]
        for (name, value) in parameters { block.append("            fastcgi_param \(name) \"\(value)\";") }
        if !fastCGI {
            block.append("            fastcgi_param SCRIPT_FILENAME \(nginxLiteral(binDirectory + "/" + function.executable));")
            block.append("            fastcgi_param SWIFT_BACKTRACE \"enable=no\";")
            for name in function.environment {
                if let value = environment[name] { block.append("            fastcgi_param \(name) \(nginxLiteral(value));") }
            }
        }
        block.append("        }")
        return block
    }

    /// A literal nginx string: quoted, `"` and `\` escaped, and `$` written as `${dollar}`
    /// (defined in the http block) so that no value is read as a variable.
    private func nginxLiteral(_ text: String) -> String { quoted(text.replacing("$", with: "${dollar}")) }
}
