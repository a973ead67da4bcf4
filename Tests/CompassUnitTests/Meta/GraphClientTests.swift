import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct GraphClientTests {
    func client(_ world: World) -> GraphClient {
        GraphClient(
            settings: world.config.meta,
            app: world.config.meta.appID.map { MetaSettings.App(id: $0, secret: World.appSecret) } ?? MetaSettings.App(id: "", secret: ""),
            transport: world.transport, logger: world.logs.logger())
    }

    func longLivedToken(_ world: World) throws -> String {
        world.connectTenant()
        return try CredentialCipher(keys: world.config.platform.credentialKeys!, random: SecureRandom())
            .open(try #require(world.credential()).token, context: IntegrationCredential.sealContext(tenantId: "tenant_a"))
    }

    @Test func addsTheProofToPagingLinksThatLackIt() throws {
        let world = World()
        let token = try longLivedToken(world)
        world.transport.requests.withLock { $0.removeAll() }
        let accounts = try client(world).adAccounts(token: token)
        #expect(accounts.count == 5)
        let urls = world.transport.requests.withLock { $0.map(\.url) }
        #expect(urls.count == 3)
        for url in urls {
            let query = QueryParameters(parsing: url.split(separator: "?")[1])
            #expect(query.single("appsecret_proof") == GraphClient.appsecretProof(token: token, appSecret: World.appSecret))
        }
    }

    @Test func refusesPagingLinksToAnotherHost() throws {
        let world = World()
        let token = try longLivedToken(world)
        world.transport.intercept.withLock {
            $0 = { request in
                guard request.url.contains("/me/adaccounts") else { return nil }
                return HTTPResponse(
                    status: 200, body: Array(#"{"data":[],"paging":{"next":"https://evil.example/steal?access_token=x"}}"#.utf8))
            }
        }
        #expect(throws: GraphFailure.badResponse(status: 200, reason: "paging link points outside the Graph API")) {
            try client(world).adAccounts(token: token)
        }
        #expect(!world.transport.requests.withLock { $0.contains { $0.url.contains("evil.example") } })
    }

    @Test func stopsOnAPagingLoop() throws {
        let world = World()
        let token = try longLivedToken(world)
        let loop = "\(World.graphBase)/v26.0/me/adaccounts?after=x"
        world.transport.intercept.withLock {
            $0 = { _ in HTTPResponse(status: 200, body: Array(#"{"data":[],"paging":{"next":"\#(loop)"}}"#.utf8)) }
        }
        #expect(throws: GraphFailure.badResponse(status: 200, reason: "paging link repeats")) { try client(world).adAccounts(token: token) }
    }

    @Test func anUndocumentedAnswerIsABadResponseNotACrash() throws {
        let world = World()
        for body in ["", "null", "[]", #"{"data":"x"}"#, #"{"data":[{"id":5}]}"#, #"{"data":[{"id":"../x"}]}"#, "{\"data\":["] {
            world.transport.intercept.withLock { $0 = { _ in HTTPResponse(status: 200, body: Array(body.utf8)) } }
            #expect(throws: GraphFailure.self) { try client(world).adAccounts(token: "t0ken-value") }
        }
        world.transport.intercept.withLock { $0 = { _ in HTTPResponse(status: 502, body: Array("<html>bad gateway</html>".utf8)) } }
        #expect(throws: GraphFailure.badResponse(status: 502, reason: "HTTP 502 without a Graph error body")) {
            try client(world).me(token: "t0ken-value")
        }
    }

    static let classification: [(String, Int, GraphFailure.Kind)] = [
        (#"{"error":{"code":190,"error_subcode":463}}"#, 400, .invalidToken),
        (#"{"error":{"code":102}}"#, 400, .invalidToken),
        (#"{"error":{"code":10}}"#, 403, .permission),
        (#"{"error":{"code":200}}"#, 403, .permission),
        (#"{"error":{"code":294}}"#, 403, .permission),
        (#"{"error":{"code":17}}"#, 400, .rateLimited),
        (#"{"error":{"code":4}}"#, 400, .rateLimited),
        (#"{"error":{"code":613}}"#, 400, .rateLimited),
        (#"{"error":{"code":80004}}"#, 400, .rateLimited),
        (#"{"error":{"code":100}}"#, 429, .rateLimited),
        (#"{"error":{"code":368}}"#, 400, .blocked),
        (#"{"error":{"code":1}}"#, 500, .transient),
        (#"{"error":{"code":2}}"#, 503, .transient),
        (#"{"error":{"code":100,"is_transient":true}}"#, 400, .transient),
        (#"{"error":{"code":100,"error_subcode":2804016}}"#, 400, .invalidEvent),
        (#"{"error":{"code":100,"error_subcode":33}}"#, 400, .objectUnavailable),
    ]

    @Test(arguments: classification)
    func classifiesErrorsAsMetaDocuments(body: String, status: Int, kind: GraphFailure.Kind) throws {
        let error = try #require(GraphAPIError.decode(from: Array(body.utf8)))
        #expect(GraphFailure.api(error, httpStatus: status, retryAfterSeconds: nil).kind == kind)
    }

    @Test func transportFailuresAreTransient() {
        #expect(GraphFailure.transport(.timeout).kind == .transient)
        #expect(GraphFailure.transport(.connect("refused")).isRetryable)
    }

    /// SANDBOX_LATENCY_MS: each Graph call waits as a round trip to Meta would.
    @Test func theSandboxCanWaitLikeMeta() {
        let world = World()
        var sandbox = world.sandbox
        sandbox.latencyMilliseconds = 60
        let started = Date()
        _ = sandbox.handle(.init(method: "GET", path: "/v26.0/me", query: QueryParameters(parsing: "access_token=x")))
        #expect(Date().timeIntervalSince(started) >= 0.06)
    }

    @Test func readsWhenMetaLetsTheAppCallAgain() {
        #expect(GraphClient.retryAfter(["retry-after": "30"]) == 30)
        #expect(
            GraphClient.retryAfter([
                "x-business-use-case-usage":
                    #"{"123":[{"type":"ads_management","call_count":100,"estimated_time_to_regain_access":5},{"estimated_time_to_regain_access":2}]}"#
            ]) == 300)
        #expect(GraphClient.retryAfter(["x-business-use-case-usage": "not json"]) == nil)
        #expect(GraphClient.retryAfter([:]) == nil)
        // Found by the fuzzer: minutes this large overflowed when turned into seconds.
        #expect(
            GraphClient.retryAfter([
                "x-business-use-case-usage":
                    #"{"123":[{"tt":100,"estimated_time_to_regain_access":5222222222222222222}]}"#
            ]) == 86_400)
        #expect(GraphClient.retryAfter(["retry-after": "99999999"]) == 86_400)
        #expect(GraphClient.retryAfter(["x-business-use-case-usage": #"{"1":[{"estimated_time_to_regain_access":-5}]}"#]) == 0)
    }

    @Test func theDialogURLCarriesExactlyWhatMetaNeeds() throws {
        let world = World()
        let url = client(world).authorizationURL(
            state: "s", redirectURI: "https://c.example/api/connect/meta/callback",
            scopes: ["ads_read", "business_management"], rerequest: true)
        #expect(
            url
                == "\(World.graphBase)/v26.0/dialog/oauth?client_id=\(World.appId)&redirect_uri=https%3A%2F%2Fc.example%2Fapi%2Fconnect%2Fmeta%2Fcallback&state=s&scope=ads_read%2Cbusiness_management&response_type=code&auth_type=rerequest"
        )
    }
}
