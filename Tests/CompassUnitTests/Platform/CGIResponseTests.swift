import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct CGIResponseTests {
    @Test func rendersAWholeJSONErrorResponse() {
        let text = String(decoding: CGIResponse.error(.methodNotAllowed(["GET", "PUT"])).rendered(), as: UTF8.self)
        #expect(
            text == """
                Status: 405 Method Not Allowed\r
                Content-Type: application/json; charset=utf-8\r
                Allow: GET, PUT\r
                Cache-Control: no-store\r
                X-Content-Type-Options: nosniff\r
                Content-Length: 80\r
                \r
                {"error":{"code":"method_not_allowed","message":"This route accepts GET, PUT."}}
                """)
    }

    @Test func headHasNoBodyAndSeveralCookiesStaySeparate() {
        var response = CGIResponse.json(200, ["ok": true])
        response.headers.append(("Set-Cookie", "a=1; HttpOnly"))
        response.headers.append(("Set-Cookie", "b=2; HttpOnly"))
        let text = String(decoding: response.rendered(forHead: true), as: UTF8.self)
        #expect(text.hasSuffix("\r\n\r\n"))
        #expect(text.contains("Set-Cookie: a=1; HttpOnly\r\nSet-Cookie: b=2; HttpOnly\r\n"))
        #expect(!text.contains(#""ok""#))
    }

    @Test func headerValuesCannotInjectHeaders() {
        let text = String(decoding: CGIResponse.redirect(to: "https://x/\r\nSet-Cookie: evil=1").rendered(), as: UTF8.self)
        #expect(!text.contains("\r\nSet-Cookie"))
    }
}
