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
        // A store's sales to a dataset of their own, chosen from the same listing.
        try browser.click("#route-physical_store option[value=\"\(SandboxData.offlineDataset)\"]")
        try browser.click("#save")
        #expect(try browser.waitForText("#saved", containing: "Saved") == "Saved: act_1000002 / pixel 2000202")

        // A test event from the page, then refresh-cron's fetch of Meta's match quality: the
        // page shows the delivery, the pixel's status and the figures.
        try browser.click("#send-test")
        #expect(try browser.waitForText("#test-result", containing: "Test event").hasPrefix("Test event sent"))
        #expect(try browser.waitForText("#sent", containing: "1") == "1")
        #expect(try browser.text("#pixel-status") == "available")
        #expect(try browser.waitForText("#datasets", containing: SandboxData.offlineDataset).contains("physical_store"))
        #expect(try browser.text("#test-code-ends").hasPrefix("ends "))
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
