import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage

#if canImport(Glibc)
    import Glibc
#endif

/// A minimal W3C WebDriver client over the project's HTTP client, for chromedriver.
struct WebDriver {
    let base: String
    let session: String

    static var chromium: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }
    static var chromedriver: String? { ["/usr/bin/chromedriver"].first { FileManager.default.isExecutableFile(atPath: $0) } }
    static var available: Bool { chromium != nil && chromedriver != nil }

    struct Failure: Error, CustomStringConvertible { var description: String }

    static func call(_ method: String, _ url: String, _ body: Any? = nil) throws -> [String: Any] {
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        let response = try CurlTransport().send(
            HTTPRequest(
                method: method, url: url, headers: [("Content-Type", "application/json")],
                body: data.map { Array($0) } ?? (method == "POST" ? Array("{}".utf8) : nil),
                timeoutMilliseconds: 60_000, maxResponseBytes: 32 << 20))
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        guard (200..<300).contains(response.status) else {
            throw Failure(
                description: "WebDriver \(method) \(url): \(response.status) \(String(decoding: response.body.prefix(500), as: UTF8.self))")
        }
        return object
    }

    static func start(driverPort: Int, profile: String) throws -> WebDriver {
        let base = "http://127.0.0.1:\(driverPort)"
        let capabilities: [String: Any] = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": [
                        "binary": chromium!,
                        "args": [
                            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,1000",
                            "--user-data-dir=\(profile)", "--no-first-run",
                        ],
                    ],
                ]
            ]
        ]
        let value = try call("POST", base + "/session", capabilities)["value"] as? [String: Any]
        guard let id = value?["sessionId"] as? String else { throw Failure(description: "no WebDriver session") }
        return WebDriver(base: base, session: id)
    }

    var url: String { "\(base)/session/\(session)" }

    func go(_ address: String) throws { _ = try Self.call("POST", url + "/url", ["url": address]) }
    func quit() { _ = try? Self.call("DELETE", url) }

    /// Waits up to `seconds` for a CSS selector to match a displayed element.
    func element(_ css: String, seconds: Double = 10) throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let found = try? Self.call("POST", url + "/element", ["using": "css selector", "value": css]),
                let value = found["value"] as? [String: Any], let id = value.values.first as? String
            {
                return id
            }
            guard Date() < deadline else { throw Failure(description: "no element \(css) on \((try? currentURL()) ?? "?")") }
            usleep(100_000)
        }
    }

    /// Clicks once the element is displayed and enabled; a click the browser still refuses
    /// (not interactable yet, or the page replaced the element) is tried again until `seconds`.
    func click(_ css: String, seconds: Double = 10) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            do {
                let id = try element(css, seconds: max(deadline.timeIntervalSinceNow, 0.1))
                let shown = try Self.call("GET", url + "/element/\(id)/displayed")["value"] as? Bool ?? false
                let enabled = try Self.call("GET", url + "/element/\(id)/enabled")["value"] as? Bool ?? false
                if shown && enabled {
                    _ = try Self.call("POST", url + "/element/\(id)/click")
                    return
                }
            } catch let failure as Failure
                where failure.description.contains("not interactable")
                || failure.description.contains("stale element") || failure.description.contains("click intercepted")
            {
                // The page is still changing: look again.
            }
            guard Date() < deadline else { throw Failure(description: "\(css) never became clickable") }
            usleep(100_000)
        }
    }

    func type(_ css: String, _ text: String) throws {
        let id = try element(css)
        _ = try Self.call("POST", url + "/element/\(id)/clear")
        _ = try Self.call("POST", url + "/element/\(id)/value", ["text": text])
    }

    func text(_ css: String) throws -> String {
        try Self.call("GET", url + "/element/\(try element(css))/text")["value"] as? String ?? ""
    }

    func waitForText(_ css: String, containing needle: String, seconds: Double = 10) throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let current = (try? text(css)) ?? ""
            if current.contains(needle) { return current }
            guard Date() < deadline else { throw Failure(description: "\(css) never showed \(needle); it shows \(current)") }
            usleep(100_000)
        }
    }

    func currentURL() throws -> String { try Self.call("GET", url + "/url")["value"] as? String ?? "" }

    func screenshot() throws -> Data {
        guard let encoded = try Self.call("GET", url + "/screenshot")["value"] as? String, let png = Data(base64Encoded: encoded) else {
            throw Failure(description: "no screenshot")
        }
        return png
    }
}

/// The development page in a real browser: log in, connect, approve at the sandbox, pick a
/// pixel, save, see it saved. Needs Debian's chromium and chromium-driver (scripts/setup
/// installs them); without them the test is reported as skipped with the reason.
@Suite(.serialized) struct BrowserTests {
    static let artifacts = FunctionsManifestTests.root.appendingPathComponent("artifacts")

    @Test(.enabled(if: WebDriver.available, "Chromium or chromedriver is not installed (apt-get install chromium chromium-driver)"))
    func aTenantConnectsAndPicksAPixelInTheBrowser() throws {
        let host = try LighttpdHost()
        // chromedriver on a free port; one taken meanwhile makes it exit, and another is tried.
        var driver: (port: Int, pid: pid_t)? = nil
        for _ in 0..<5 where driver == nil {
            let port = try LighttpdHost.freePort()
            let pid = try LighttpdHost.spawn([WebDriver.chromedriver!, "--port=\(port)"], stderr: host.folder.path + "/chromedriver.log")
            let deadline = Date().addingTimeInterval(15)
            var status: Int32 = 0
            while Date() < deadline {
                if waitpid(pid, &status, WNOHANG) == pid { break }
                if LighttpdHost.accepts(port) {
                    driver = (port, pid)
                    break
                }
                usleep(50_000)
            }
            if driver == nil {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
            }
        }
        guard let (driverPort, driverPid) = driver else {
            Issue.record("chromedriver did not start")
            return
        }
        defer {
            kill(driverPid, SIGTERM)
            var status: Int32 = 0
            waitpid(driverPid, &status, 0)
        }
        let browser = try WebDriver.start(driverPort: driverPort, profile: host.folder.path + "/profile")
        defer { browser.quit() }

        try browser.go(host.base + "/dev/login")
        try browser.type("#login-tenant", "tenant_browser")
        try browser.click("#login-submit")
        try browser.click("#connect")
        try browser.click("#approve")
        #expect(try browser.waitForText("#result", containing: "Meta connected.") == "Meta connected.")
        #expect(try browser.currentURL().hasSuffix("/settings/integrations?connected=meta"))

        _ = try browser.element("#account option[value=\"act_1000002\"]")
        try browser.click("#account option[value=\"act_1000002\"]")
        try browser.click("#pixel option[value=\"2000202\"]")
        try browser.type("#test-code", "TEST77")
        try browser.click("#save")
        #expect(try browser.waitForText("#saved", containing: "Saved") == "Saved: act_1000002 / pixel 2000202")

        // A test event from the page, then refresh-cron's fetch of Meta's match quality: the
        // page shows the delivery, the pixel's status and the figures.
        try browser.click("#send-test")
        #expect(try browser.waitForText("#test-result", containing: "Test event").hasPrefix("Test event sent"))
        #expect(try browser.waitForText("#sent", containing: "1") == "1")
        #expect(try browser.text("#pixel-status") == "available")
        #expect(try browser.text("#token-type") == "user")
        let cron = try host.send("POST", "/api/cron/meta/refresh", headers: [("Authorization", "Bearer cron-secret-for-tests-0123456789")])
        #expect(cron.status == 200)
        try browser.go(host.base + "/settings/integrations")
        #expect(try browser.waitForText("#emq", containing: "Lead").contains("email 100"))

        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        try browser.screenshot().write(to: Self.artifacts.appendingPathComponent("browser-settings.png"))

        // Saved for real: the API says so, and a reload shows it.
        try browser.go(host.base + "/settings/integrations")
        _ = try browser.element("#pixel option[value=\"2000202\"]")
        let session = try host.login("tenant_browser")
        let settings = String(
            decoding: try host.send("GET", "/api/connect/meta/settings", headers: [("Cookie", session)]).body, as: UTF8.self)
        #expect(settings.contains(#""pixelId":"2000202""#))
        #expect(settings.contains(#""testEventCode":"TEST77""#))
    }
}
