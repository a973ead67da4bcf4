@testable import Compass
import Foundation
import Testing

/// functions.json is what hosts are configured from: it must match what was built.
@Suite struct FunctionsManifestTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

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
