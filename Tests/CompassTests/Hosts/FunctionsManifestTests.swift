@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
import Foundation
import Testing

/// functions.json is what hosts are configured from: it must match what was built.
@Suite struct FunctionsManifestTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

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

    @Test func eachBuiltFunctionAnswersItsOwnMethods() throws {
        let world = try CGIWorld()
        for function in try manifest().functions where function.planned != true {
            let response = try world.run(function.executable, "PATCH", function.paths[0])
            #expect(response.status == 405)
            #expect(response.header("Allow") == function.methods.joined(separator: ", "))
        }
    }
}

@Suite struct LighttpdConfigTests {
    func render(sandbox: Bool) throws -> String {
        let manifest = try FunctionsManifest.load(path: FunctionsManifestTests.root.appendingPathComponent("functions.json").path)
        return LighttpdConfig(manifest: manifest, binDirectory: "/srv/bin", dataDirectory: "/srv/data", port: 3000,
                              environment: ["META_APP_ID": "1", "COMPASS_JWT_SECRET": "s\"e\\cret", "CRON_SECRET": "c"],
                              sandbox: sandbox).render()
    }

    @Test func withARealMetaAppNeitherTheSandboxNorTheDevConsoleIsServed() throws {
        let config = try render(sandbox: false)
        #expect(!config.contains("graph-sandbox"))
        #expect(!config.contains("dev-console"))
        #expect(!config.contains("/dev/login"))
        for path in ["/api/connect/meta", "/api/connect/meta/callback", "/api/connect/meta/events/replay",
                     "/api/cron/meta/refresh", "/api/connect/meta/data-deletion"] {
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
