import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage

/// functions.json is what hosts are configured from: it must match what was built.
@Suite struct FunctionsManifestTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func manifest() throws -> FunctionsManifest {
        try FunctionsManifest.load(path: Self.root.appendingPathComponent("functions.json").path)
    }

    @Test func listsEveryRouteOfTheDesignOnce() throws {
        let functions = try manifest().functions
        #expect(functions.map(\.name) == ["connect", "callback", "disconnect", "settings", "send-event", "refresh-cron", "meta-webhooks"])
        #expect(Set(functions.flatMap(\.paths)).count == functions.flatMap(\.paths).count)
        #expect(functions.allSatisfy { $0.name == $0.executable && $0.timeoutSeconds > 0 && !$0.methods.isEmpty })
        #expect(functions.first { $0.name == "refresh-cron" }?.schedule != nil)
    }

    @Test func everyFunctionThatIsNotPlannedIsBuilt() throws {
        for function in try manifest().functions where function.planned != true {
            #expect(FileManager.default.isExecutableFile(atPath: Executables.url(function.executable).path), "\(function.name)")
        }
    }

    @Test func namesOnlyVariablesTheConfigReads() throws {
        for function in try manifest().functions {
            for variable in function.environment {
                #expect(Config.variables.contains(variable), "\(function.name): \(variable)")
            }
        }
    }

    /// A route lives in four places: its handler, its main.swift, `routes` in Package.swift and
    /// functions.json. These say where a route is missing.
    @Test func packageRoutesAndFunctionsJSONNameTheSameExecutables() throws {
        let packageText = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let line = try #require(
            packageText.split(separator: "\n").first { $0.hasPrefix("let routes = [") },
            "Package.swift has no `let routes = [...]` line")
        let routes = line.split(separator: "\"").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
        let functions = try manifest().functions.filter { $0.planned != true }.map(\.executable)
        for route in routes where !functions.contains(route) {
            Issue.record("Package.swift builds the route \(route) that functions.json does not list")
        }
        for function in functions where !routes.contains(function) {
            Issue.record("functions.json lists \(function) that `routes` in Package.swift does not build")
        }
    }

    @Test func eachRouteMainIsOneCallNamingItsHandler() throws {
        for function in try manifest().functions where function.planned != true {
            let path = "Sources/\(function.executable)/main.swift"
            let text = try String(contentsOf: Self.root.appendingPathComponent(path), encoding: .utf8)
            let code = text.split(separator: "\n").filter { !$0.isEmpty && !$0.hasPrefix("import ") && !$0.hasPrefix("//") }
            #expect(
                code.count == 1 && code[0].hasPrefix("Runtime.run(") && code[0].hasSuffix("Handler.self)"),
                "\(path) should be one call, Runtime.run(SomeHandler.self)")
        }
    }

    /// The handler behind each executable declares the same name (its log lines' `function`)
    /// and the same body limit as functions.json.
    @Test func eachBuiltFunctionKeepsItsNameAndBodyLimit() throws {
        let world = try CGIWorld()
        for function in try manifest().functions where function.planned != true {
            let method = function.methods[0]
            let over = try world.run(function.executable, method, function.paths[0], contentLength: String(function.maxBodyBytes + 1))
            #expect(over.status == 413 && over.errorCode == "body_too_large", "\(function.name): \(over.raw.prefix(200))")
            #expect(over.body.contains("larger than \(function.maxBodyBytes) bytes"), "\(function.name): \(over.body)")
            let at = try world.run(function.executable, method, function.paths[0], contentLength: String(function.maxBodyBytes))
            #expect(at.status != 413, "\(function.name) refuses a body of exactly maxBodyBytes")
            let logged = over.stderr.split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
            }
            #expect(
                !logged.isEmpty && logged.allSatisfy { $0["function"] as? String == function.name },
                "\(function.name): log lines name another function: \(over.stderr.prefix(300))")
        }
    }

    @Test func eachBuiltFunctionAnswersItsOwnMethods() throws {
        let world = try CGIWorld()
        for function in try manifest().functions where function.planned != true {
            let response = try world.run(function.executable, "PATCH", function.paths[0])
            #expect(response.status == 405)
            #expect(response.header("Allow") == function.methods.joined(separator: ", "))
        }
    }
}

extension HostSetup {
    /// The repository's functions.json served from /srv/bin and /srv/data on port 3000.
    static func sample(environment: [String: String], fastCGI: Bool = false, sandbox: Bool = false) throws -> HostSetup {
        let manifest = try FunctionsManifest.load(path: FunctionsManifestTests.root.appendingPathComponent("functions.json").path)
        return HostSetup(
            manifest: manifest, binDirectory: "/srv/bin", dataDirectory: "/srv/data", port: 3000,
            environment: environment, fastCGI: fastCGI, sandbox: sandbox)
    }
}

@Suite struct LighttpdConfigTests {
    func render(sandbox: Bool) throws -> String {
        try HostSetup.sample(
            environment: ["META_APP_ID": "1", "COMPASS_JWT_SECRET": "s\"e\\cret", "CRON_SECRET": "c"],
            sandbox: sandbox
        ).lighttpdConfig()
    }

    @Test func withARealMetaAppNeitherTheSandboxNorTheDevConsoleIsServed() throws {
        let config = try render(sandbox: false)
        #expect(!config.contains("graph-sandbox"))
        #expect(!config.contains("dev-console"))
        #expect(!config.contains("/dev/login"))
        for path in [
            "/api/connect/meta", "/api/connect/meta/callback", "/api/connect/meta/events/replay",
            "/api/cron/meta/refresh", "/api/connect/meta/data-deletion",
        ] {
            #expect(config.contains(#"$HTTP["url"] == "\#(path)""#), "\(path)")
        }
    }

    @Test func eachFunctionGetsOnlyItsOwnVariablesAndTimeLimit() throws {
        let config = try render(sandbox: true)
        let connect = try #require(config.components(separatedBy: #"$HTTP["url"] == "/api/connect/meta" {"#).dropFirst().first)
        let block = String(connect.prefix { $0 != "}" })
        #expect(block.contains(#""META_APP_ID" => "1""#))
        #expect(!block.contains("CRON_SECRET"))
        #expect(block.contains(#""read-timeout" => 10"#))
        // Values are quoted for lighttpd: a quote or backslash cannot end the string early.
        #expect(block.contains(#""COMPASS_JWT_SECRET" => "s\"e\\cret""#))
        #expect(config.contains(#"setenv.set-request-header = ("Proxy" => "")"#))
        #expect(config.contains("graph-sandbox") && config.contains("dev-console"))
    }
}

@Suite struct NginxConfigTests {
    func render(fastCGI: Bool) throws -> String {
        try HostSetup.sample(
            environment: ["META_APP_ID": "1", "COMPASS_JWT_SECRET": "s\"e$c\\ret", "CRON_SECRET": "c"],
            fastCGI: fastCGI
        ).nginxConfig()
    }

    @Test func eachRouteGetsOnlyItsOwnVariablesAndLimits() throws {
        let config = try render(fastCGI: false)
        let connect = try #require(config.components(separatedBy: "location = /api/connect/meta {").dropFirst().first)
        let block = try #require(connect.components(separatedBy: "\n        }").first)
        #expect(block.contains(#"fastcgi_param META_APP_ID "1";"#))
        #expect(!block.contains("CRON_SECRET"))
        #expect(block.contains("client_max_body_size \(65_536 + 65_536);"))
        #expect(block.contains(#"fastcgi_param SCRIPT_FILENAME "/srv/bin/connect";"#))
        // Literal values cannot end the string early or be read as nginx variables.
        #expect(block.contains(#"fastcgi_param COMPASS_JWT_SECRET "s\"e${dollar}c\\ret";"#))
        #expect(block.contains(#"fastcgi_param HTTP_PROXY "";"#))
        #expect(config.contains("location = /api/connect/meta/events/replay {"))
    }

    @Test func fastCGIPutsNoSecretInTheConfig() throws {
        let config = try render(fastCGI: true)
        #expect(!config.contains("COMPASS_JWT_SECRET") && !config.contains("SCRIPT_FILENAME"))
        #expect(config.contains("fastcgi_pass unix:/srv/data/fastcgi/send-event.sock;"))
    }

    /// nginx's errors quote the request line (the callback's code and state in its query): its
    /// error log keeps only what is critical, and it has no access log.
    @Test func theLogsHoldNoQueryString() throws {
        for fastCGI in [false, true] {
            let config = try render(fastCGI: fastCGI)
            #expect(config.contains("/nginx-error.log crit;") && config.contains("access_log off;"))
        }
    }
}

@Suite struct ApacheConfigTests {
    @Test func exactRoutesAuthorizationAndOwnVariables() throws {
        let config = try HostSetup.sample(environment: ["META_APP_ID": "1", "CRON_SECRET": "c\"x"]).apacheConfig()
        // Anchored: `/api/connect/meta` is a prefix of every other route.
        #expect(config.contains(#"ScriptAliasMatch "^/api/connect/meta$" "/srv/bin/connect""#))
        let cron = try #require(config.components(separatedBy: #"<LocationMatch "^/api/cron/meta/refresh$">"#).dropFirst().first)
        let block = try #require(cron.components(separatedBy: "</LocationMatch>").first)
        #expect(block.contains("CGIPassAuth On"))
        #expect(block.contains(#"SetEnv CRON_SECRET "c\"x""#))
        let connect = try #require(config.components(separatedBy: #"<LocationMatch "^/api/connect/meta$">"#).dropFirst().first)
        #expect(try #require(connect.components(separatedBy: "</LocationMatch>").first).contains("META_APP_ID"))
        #expect(!(try #require(connect.components(separatedBy: "</LocationMatch>").first).contains("CRON_SECRET")))
        #expect(config.contains("RequestHeader unset Proxy early"))
        let fastCGI = try HostSetup.sample(environment: ["CRON_SECRET": "c"], fastCGI: true).apacheConfig()
        #expect(!fastCGI.contains("CRON_SECRET"))
        #expect(fastCGI.contains(#""unix:/srv/data/fastcgi/send-event.sock|fcgi://compass-send-event/""#))
    }
}

/// The AWS SAM template scripts/package-lambda writes (cfn-lint checks its schema in scripts/test).
@Suite struct SAMTemplateTests {
    @Test func everyProductionFunctionWithItsRoutesScheduleAndSecretParameters() throws {
        let manifest = try FunctionsManifest.load(path: FunctionsManifestTests.root.appendingPathComponent("functions.json").path)
        let text = SAMTemplate(manifest: manifest).render()
        #expect(text.contains("Runtime: \"provided.al2023\"") && text.contains("Handler: \"bootstrap\""))
        for function in manifest.functions {
            let start = try #require(text.range(of: "  \(SAMTemplate.resourceName(function.name)):\n"), "\(function.name)")
            let rest = text[start.upperBound...]
            let block = rest[..<(rest.range(of: "\n  [A-Za-z]+:\n", options: .regularExpression)?.lowerBound ?? rest.endIndex)]
            #expect(block.contains("CodeUri: \"\(function.name).zip\""))
            for path in function.paths {
                for method in function.methods {
                    #expect(block.contains("Path: \"\(path)\"\n            Method: \"\(method)\""), "\(function.name) \(method) \(path)")
                }
            }
            for variable in function.environment {
                #expect(
                    block.contains("\(SAMTemplate.environmentName(for: variable)): !Ref \(SAMTemplate.parameter(for: variable))"),
                    "\(function.name): \(variable)")
                // A secret is never a plain environment variable: the function gets the secret's
                // ARN, the extension that reads it, and the right to read that secret.
                if SAMTemplate.secrets.contains(variable) {
                    #expect(!block.contains("          \(variable): "), "\(function.name): \(variable) in the environment")
                    #expect(
                        block.contains("- !Ref SecretsExtensionLayerArn") && block.contains("Action: \"secretsmanager:GetSecretValue\""))
                    #expect(
                        block.contains("!Ref \(SAMTemplate.secretParameterName(variable))\n")
                            || block.contains("!Ref \(SAMTemplate.secretParameterName(variable)), !Ref \"AWS::NoValue\"]"),
                        "\(function.name): \(variable)")
                }
            }
            #expect(block.contains("Timeout: \(function.schedule == nil ? min(function.timeoutSeconds, 29) : function.timeoutSeconds)"))
            #expect(block.contains("Type: \"Schedule\"") == (function.schedule != nil), "\(function.name)")
        }
        #expect(text.contains("Schedule: \"rate(1 minute)\""))
        for name in ["graph-sandbox", "dev-console", "GraphSandbox", "DevConsole"] { #expect(!text.contains(name)) }
        // A secret's parameter is the ARN of its secret; every required variable has no default,
        // the others default to empty.
        for variable in Set(manifest.functions.flatMap(\.environment)) {
            let start = try #require(text.range(of: "  \(SAMTemplate.parameter(for: variable)):\n"))
            let block = text[start.upperBound...].prefix(300).split(separator: "\n").prefix(4).joined(separator: "\n")
            #expect(block.contains("ARN of the Secrets Manager secret") == SAMTemplate.secrets.contains(variable), "\(variable)")
            #expect(block.contains("Default: \"\"") != SAMTemplate.required.contains(variable), "\(variable)")
        }
        #expect(SAMTemplate.secrets.contains("STORE_URL"))
        #expect(SAMTemplate.required.isSubset(of: Config.variables) && SAMTemplate.secrets.isSubset(of: Config.variables))
        #expect(SAMTemplate.scheduleExpression("15 3 * * *") == "cron(15 3 * * ? *)")
        #expect(SAMTemplate.scheduleExpression("0 6 * * 1") == "cron(0 6 ? * 1 *)")
        #expect(SAMTemplate.scheduleExpression("bad") == nil)
    }
}
