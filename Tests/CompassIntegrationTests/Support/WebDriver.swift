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
