import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct QueryParametersTests {
    @Test func keepsRepeatedNamesAndOrder() {
        let query = QueryParameters(parsing: "a=1&b=2&a=3")
        #expect(query.values("a") == ["1", "3"])
        #expect(query.single("a") == nil)
        #expect(query.single("b") == "2")
        #expect(query.contains("a"))
    }

    @Test func decodesPlusAndPercentAndKeepsBrokenEscapesLiterally() {
        let query = QueryParameters(parsing: "q=a+b%20c&bad=%zz%4&u=%C3%A9&empty=&flag")
        #expect(query.single("q") == "a b c")
        #expect(query.single("bad") == "%zz%4")
        #expect(query.single("u") == "é")
        #expect(query.single("empty") == "")
        #expect(query.single("flag") == "")
    }

    @Test func invalidUTF8BecomesReplacementCharacters() {
        #expect(QueryParameters(parsing: "x=%FF%FE").single("x") == "\u{FFFD}\u{FFFD}")
    }

    @Test func encodesEverythingButUnreserved() {
        var query = QueryParameters()
        query.append("redirect_uri", "https://a.b/c?d=e f")
        #expect(query.encoded == "redirect_uri=https%3A%2F%2Fa.b%2Fc%3Fd%3De%20f")
    }
}
