import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// The fixture requests in Fixtures/requests, run through `compass-dev invoke` exactly as
/// `scripts/invoke` runs them, each with the outcome it documents and its whole CGI response
/// (status line, headers, body) equal to the one stored in Fixtures/responses. Values that differ
/// from run to run (states, times, ports, codes) are replaced by `{placeholders}` first.
/// `scripts/update-fixtures` writes the stored answers anew; review the diff before committing.
@Suite struct FixtureTests {
    static let folder = FunctionsManifestTests.root.appendingPathComponent("Fixtures/requests")
    static let answers = FunctionsManifestTests.root.appendingPathComponent("Fixtures/responses")
    static let updating = ProcessInfo.processInfo.environment["UPDATE_FIXTURES"] == "1"

    /// In order: the tenant is connected first, disconnected last.
    static let expected: [(fixture: String, function: String, status: Int, location: String?)] = [
        ("connect.http", "connect", 302, nil),
        ("connect-no-session.http", "connect", 401, nil),
        ("connect-wrong-method.http", "connect", 405, nil),
        ("callback-denied.http", "callback", 302, "error=meta_denied"),
        ("callback-unknown-state.http", "callback", 302, "error=meta_state_invalid"),
        ("callback-missing-state.http", "callback", 302, "error=meta_state_invalid"),
        ("settings-get.http", "settings", 200, nil),
        ("settings-pixels.http", "settings", 200, nil),
        ("settings-put.http", "settings", 200, nil),
        ("settings-put-malformed.http", "settings", 400, nil),
        ("send-event.http", "send-event", 200, nil),
        ("send-event-dry-run.http", "send-event", 200, nil),
        ("send-event-malformed.http", "send-event", 400, nil),
        ("refresh-cron.http", "refresh-cron", 200, nil),
        ("refresh-cron-no-secret.http", "refresh-cron", 401, nil),
        ("meta-deauthorize-bad-signature.http", "meta-webhooks", 401, nil),
        ("meta-data-deletion.http", "meta-webhooks", 200, nil),
        ("meta-deauthorize.http", "meta-webhooks", 200, nil),
        ("disconnect.http", "disconnect", 200, nil),
    ]

    @Test func everyFixtureHasAnExpectedOutcome() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path).filter { $0.hasSuffix(".http") }
        #expect(Set(files) == Set(Self.expected.map(\.fixture)))
    }

    @Test func fixturesGiveTheirDocumentedOutcomes() throws {
        let world = try CGIWorld()
        let connected = try world.run("callback", "GET", "/api/connect/meta/callback?" + world.approvedCallbackQuery(), cookie: true)
        #expect(connected.header("Location")?.hasSuffix("connected=meta") == true)
        for (fixture, function, status, location) in Self.expected {
            let process = Process()
            process.executableURL = Executables.url("compass-dev")
            process.arguments = ["invoke", function, Self.folder.appendingPathComponent(fixture).path]
            process.environment = world.configuration.merging(["SWIFT_BACKTRACE": "enable=no", "CRON_SECRET": "fixture-cron-secret"]) {
                _, new in new
            }
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let response = CGIWorld.parse(.init(status: process.terminationStatus, stdout: Array(data), stderr: ""))
            #expect(response.status == status, "\(fixture): \(response.raw.prefix(300))")
            if let location { #expect(response.header("Location")?.hasSuffix(location) == true, "\(fixture)") }
            #expect(response.header("Content-Length").map { Int($0) } == response.body.utf8.count, "\(fixture)")
            let answer = Self.answers.appendingPathComponent(fixture.replacingOccurrences(of: ".http", with: ".txt"))
            let normalized = Self.normalize(response.raw, world: world)
            if Self.updating {
                try normalized.write(to: answer, atomically: true, encoding: .utf8)
            } else {
                let stored = try? String(contentsOf: answer, encoding: .utf8)
                #expect(stored == normalized, "\(fixture): the response differs from \(answer.lastPathComponent) (scripts/update-fixtures)")
            }
        }
    }

    @Test func everyStoredAnswerBelongsToAFixture() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.answers.path)
        #expect(Set(files) == Set(Self.expected.map { $0.fixture.replacingOccurrences(of: ".http", with: ".txt") }))
    }

    /// The response with what changes from run to run replaced: CRLF as LF, so the stored
    /// answers read as text.
    static func normalize(_ raw: String, world: CGIWorld) -> String {
        var text = raw.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: world.server.baseURL, with: "{graph}")
        let rules: [(pattern: String, template: String)] = [
            (#"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"#, "{time}"),
            (#"state=[A-Za-z0-9_-]+"#, "state={state}"),
            (#"code=[0-9a-f]{20}"#, "code={code}"),
            (#""confirmation_code":"[0-9a-f]{20}""#, #""confirmation_code":"{code}""#),
            (#""durationMs":\d+"#, #""durationMs":{ms}"#),
            // The sweep visits the metrics ledger's shards too: one per bucket requests chose at random.
            (#""visited":\d+"#, #""visited":{keys}"#),
            // Fixtures send events stamped {{now}}; their ids are derived from the time.
            (#""event_time":\d+"#, #""event_time":{now}"#),
            (#""event_id":"cmp_[0-9a-f]{32}""#, #""event_id":"cmp_{derived}""#),
            (#""fbtraceIds":\["[^\]]*"\]"#, #""fbtraceIds":["{fbtrace}"]"#),
            (#"Content-Length: \d+"#, "Content-Length: {length}"),
        ]
        for rule in rules {
            text = text.replacingOccurrences(of: rule.pattern, with: rule.template, options: .regularExpression)
        }
        return text
    }
}
