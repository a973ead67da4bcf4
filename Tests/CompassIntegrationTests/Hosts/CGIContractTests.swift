import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// RFC 3875 as hosts really behave (Apache, nginx with fcgiwrap, lighttpd), through the built
/// executables.
@Suite struct CGIContractTests {
    @Test func aPathBeyondTheRouteIsNotFound() throws {
        let world = try CGIWorld.connected()
        // A prefix mount (Apache ScriptAlias) hands the rest over as PATH_INFO.
        let extra = try world.run(
            "settings", "GET", "/api/connect/meta/settings/extra",
            environment: ["SCRIPT_NAME": "/api/connect/meta/settings", "PATH_INFO": "/extra"])
        #expect(extra.status == 404 && extra.errorCode == "not_found", "\(extra.body)")
        let exact = try world.run(
            "settings", "GET", "/api/connect/meta/settings",
            environment: ["SCRIPT_NAME": "/api/connect/meta/settings", "PATH_INFO": ""])
        #expect(exact.status == 200)
    }

    @Test func theRouteIsTheOneTheHostDecoded() throws {
        let world = try CGIWorld.connected()
        // The host matched the decoded path to the replay mount; the raw REQUEST_URI still says %72.
        let replay = try world.run(
            "send-event", "POST", "/api/connect/meta/events/%72eplay",
            environment: ["SCRIPT_NAME": "/api/connect/meta/events/replay"])
        #expect(replay.status == 200 && replay.json["replayed"] != nil, "\(replay.body)")
        // Without SCRIPT_NAME, REQUEST_URI is decoded and normalized the same way.
        let fromURI = try world.run(
            "send-event", "POST", "/api/connect/meta/x/../events/%72eplay",
            environment: ["SCRIPT_NAME": nil])
        #expect(fromURI.status == 200 && fromURI.json["replayed"] != nil, "\(fromURI.body)")
    }

    @Test func aChunkedBodyWithoutContentLengthIsReadToItsEnd() throws {
        let world = try CGIWorld.connected()
        let event = LighttpdHost.lead("chunked-1")
        let answer = try world.run(
            "send-event", "POST", "/api/connect/meta/events", body: event,
            environment: ["CONTENT_LENGTH": nil, "HTTP_TRANSFER_ENCODING": "chunked"])
        #expect(answer.status == 200 && answer.json["eventsReceived"] as? Int == 1, "\(answer.body)")
        let tooLarge = try world.run(
            "settings", "PUT", "/api/connect/meta/settings", body: String(repeating: " ", count: 70_000),
            environment: ["CONTENT_LENGTH": nil, "HTTP_TRANSFER_ENCODING": "chunked"])
        #expect(tooLarge.status == 413 && tooLarge.errorCode == "body_too_large")
    }

    /// A request answered without its body (405 here) still has the body read, so a host that is
    /// writing it (Apache's mod_cgid, fcgiwrap past a pipe's 64 KiB) does not lose the answer:
    /// the whole 100 KB reaches the program, and the writer sees no broken pipe.
    @Test func aBodyToARouteThatDoesNotTakeItIsReadAway() throws {
        let world = try CGIWorld()
        _ = Executables.ignoreBrokenPipes
        var env = world.configuration
        env.merge([
            "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "POST", "SCRIPT_NAME": "/api/connect/meta",
            "CONTENT_LENGTH": "100000", "CONTENT_TYPE": "application/json", "SWIFT_BACKTRACE": "enable=no",
        ]) { _, new in new }
        let process = Process()
        process.executableURL = Executables.url("connect")
        process.environment = env
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var written = true
        do {
            try input.fileHandleForWriting.write(contentsOf: Data(repeating: 0x20, count: 100_000))
            try input.fileHandleForWriting.close()
        } catch {
            written = false
        }
        let answer = CGIWorld.parse(.init(status: 0, stdout: Array(output.fileHandleForReading.readDataToEndOfFile()), stderr: ""))
        process.waitUntilExit()
        #expect(written, "the program stopped reading: a host writing the body would lose the answer")
        #expect(answer.status == 405 && answer.errorCode == "method_not_allowed")
    }

    @Test func underAHostTheStoreMustBeNamed() throws {
        let world = try CGIWorld()
        let answer = try world.run("connect", "GET", "/api/connect/meta", environment: ["STORE_URL": nil])
        #expect(answer.status == 500 && answer.errorCode == "misconfigured", "\(answer.body)")
        #expect(answer.body.contains("STORE_URL"))
        #expect(!FileManager.default.fileExists(atPath: Executables.directory.path + "/.data"))
    }
}
