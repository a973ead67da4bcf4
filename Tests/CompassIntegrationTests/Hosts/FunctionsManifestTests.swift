import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// functions.json is what hosts are configured from: it must match what was built.
@Suite struct FunctionsManifestTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func manifest() throws -> FunctionsManifest {
        try FunctionsManifest.load(path: Self.root.appendingPathComponent("functions.json").path)
    }

    @Test func listsEveryRouteOfTheDesignOnce() throws {
        let functions = try manifest().functions
        #expect(
            functions.map(\.name) == [
                "connect", "callback", "disconnect", "settings", "send-event", "refresh-cron", "metrics", "meta-webhooks",
            ])
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
