import Foundation
import Testing

@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// One rule from a failure to an answer (`APIError.answer(for:logger:)`): the same failure reads
/// the same from an HTTP route and from refresh-cron run directly by cron.
@Suite struct ErrorRuleTests {
    static let cronSecret = "error-rule-cron-secret-0123456789"

    /// refresh-cron's executable over CGI (POST with the cron secret) and run directly (no CGI
    /// variables): the body and the outcome of each.
    func bothWays(_ configuration: [String: String]) throws -> (http: CGIWorld.Response, direct: Executables.Result) {
        var cgi = configuration
        cgi.merge([
            "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "POST", "REQUEST_URI": "/api/cron/meta/refresh",
            "HTTP_AUTHORIZATION": "Bearer \(Self.cronSecret)",
        ]) { _, new in new }
        let http = CGIWorld.parse(try Executables.runCGI("refresh-cron", environment: cgi))
        let direct = try Executables.runCGI("refresh-cron", environment: configuration)
        return (http, direct)
    }

    @Test func aStoreOutageReadsTheSameFromTheRouteAndFromTheDirectRun() throws {
        // Nothing listens on port 9 of the loopback: every etcd call is refused at once.
        let (http, direct) = try bothWays(["STORE_URL": "etcd://127.0.0.1:9", "CRON_SECRET": Self.cronSecret])
        #expect(http.status == 503 && http.errorCode == "store_unavailable", "\(http.raw)")
        #expect(direct.status == 1)
        #expect(direct.text.trimmingCharacters(in: .whitespacesAndNewlines) == http.body)
        for output in [http.stderr, direct.stderr] {
            #expect(output.contains(#""event":"store_failed""#), "\(output)")
        }
    }

    @Test func aMisconfigurationNamesTheVariableBothWays() throws {
        let (http, direct) = try bothWays(["META_API_VERSION": "26", "CRON_SECRET": Self.cronSecret])
        #expect(http.status == 500 && http.errorCode == "misconfigured", "\(http.raw)")
        #expect(http.body.contains("META_API_VERSION"))
        #expect(direct.status == 1)
        #expect(direct.text.trimmingCharacters(in: .whitespacesAndNewlines) == http.body)
        for output in [http.stderr, direct.stderr] {
            #expect(output.contains(#""variable":"META_API_VERSION""#), "\(output)")
        }
    }

    @Test func eachLayersErrorsKnowTheirAnswer() {
        let logs = LogCapture()
        let logger = logs.logger()
        #expect(APIError.answer(for: StoreError.corrupt("meta/integration/t"), logger: logger).code == "store_record_invalid")
        #expect(APIError.answer(for: StoreError.corrupt("k"), logger: logger).status == 500)
        #expect(APIError.answer(for: StoreError.unavailable("down"), logger: logger) == .storeUnavailable)
        #expect(
            APIError.answer(for: ConfigError(variable: "CRON_SECRET", problem: "is not set"), logger: logger)
                == .misconfigured("CRON_SECRET", "is not set"))
        #expect(APIError.answer(for: GraphFailure.transport(.timeout), logger: logger).code == "meta_unavailable")
        #expect(APIError.answer(for: CredentialCipher.Failure.unreadable, logger: logger).code == "credential_unreadable")
        // A client's own mistake is answered, not logged; a failure of the server is logged once.
        #expect(APIError.answer(for: APIError.badRequest("x", "y"), logger: logger).status == 400)
        #expect(logs.all.count == 6)
        struct Unknown: Error { var secret = "never shown" }
        let answer = APIError.answer(for: Unknown(), logger: logger)
        #expect(answer == .unexpected)
        #expect(!logs.text.contains("never shown"))
    }

    @Test func aCorruptRecordIsTheSameAnswerOnEveryRoute() throws {
        let world = World()
        world.connectTenant()
        try world.store.put(RecordKey.integration("tenant_a"), Array("{not json".utf8))
        let settings = world.run(SettingsHandler.self, world.request("GET", "/api/connect/meta/settings"))
        let events = world.run(
            SendEventHandler.self, world.request("POST", "/api/connect/meta/events", body: #"{"events":[{"eventName":"Lead"}]}"#))
        for response in [settings, events] {
            #expect(response.status == 500 && response.errorCode == "store_record_invalid", "\(response.text)")
        }
    }
}
