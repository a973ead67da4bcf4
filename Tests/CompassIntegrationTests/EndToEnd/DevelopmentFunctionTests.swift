import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// Security review finding 4: with a real Meta app, `POST /dev/login` handed out a session for
/// any tenant because the console was gated by `COMPASS_DEV_CONSOLE=1` alone.
@Suite struct DevelopmentFunctionTests {
    let folder = TemporaryFolder()

    func run(_ function: String, _ method: String, _ path: String, body: String, extra: [String: String]) throws -> CGIWorld.Response {
        var env = [
            "STORE_URL": "file://" + folder.path + "/store",
            "META_APP_ID": "123456789", "META_APP_SECRET": "a-real-app-secret-0123456789", "COMPASS_DEV_CONSOLE": "1",
            "COMPASS_JWT_SECRET": World.jwtSecret, "OAUTH_REDIRECT_BASE_URL": World.base, "SANDBOX_STATE_DIR": "/nonexistent",
            "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method, "REQUEST_URI": path,
            "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": String(body.utf8.count),
        ]
        env.merge(extra) { _, new in new }
        return CGIWorld.parse(try Executables.runCGI(function, environment: env, body: Array(body.utf8)))
    }

    @Test func withARealMetaAppTheDevelopmentFunctionsAnswerNothing() throws {
        let realGraph: [[String: String]] = [
            [:],
            ["SANDBOX_BASE_URL": "http://127.0.0.1:3000/graph"],
            ["SANDBOX_BASE_URL": "http://127.0.0.1:3000/graph", "META_GRAPH_URL": "https://graph.facebook.com"],
        ]
        for extra in realGraph {
            let login = try run("dev-console", "POST", "/dev/login", body: "tenant=victim", extra: extra)
            #expect(login.status == 404 && login.header("Set-Cookie") == nil, "\(extra): \(login.raw.prefix(200))")
            #expect(login.stderr.contains("development_function_refused"))
            let sandbox = try run("graph-sandbox", "GET", "/graph/v26.0/me", body: "", extra: extra)
            #expect(sandbox.status == 404, "\(extra): \(sandbox.raw.prefix(200))")
        }
        // As scripts/serve sets it up without a Meta app: the Graph is the sandbox.
        let sandboxed = ["SANDBOX_BASE_URL": "http://127.0.0.1:3000/graph", "META_GRAPH_URL": "http://127.0.0.1:3000/graph"]
        let login = try run("dev-console", "POST", "/dev/login", body: "tenant=dev_tenant", extra: sandboxed)
        #expect(login.status == 302 && login.header("Set-Cookie")?.hasPrefix("compass_session=") == true)
    }
}
