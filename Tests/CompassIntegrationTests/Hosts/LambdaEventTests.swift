import Foundation
import Synchronization
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

@Suite struct LambdaEventTests {
    @Test func anHTTPAPIEventBecomesTheCGIRequestAndItsAnswerComesBackInItsShape() throws {
        let event =
            #"{"version":"2.0","rawPath":"/api/connect/meta/events","rawQueryString":"dryRun=1","cookies":["a=1","compass_session=xyz"],"headers":{"content-type":"application/json","x-forwarded-for":"203.0.113.9"},"requestContext":{"http":{"method":"POST","sourceIp":"203.0.113.9"}},"body":"eyJhIjoxfQ==","isBase64Encoded":true}"#
        guard case .http(let environment, let body, let shape) = LambdaEvent.parse(Array(event.utf8)) else {
            Issue.record("not an HTTP event")
            return
        }
        #expect(shape == .httpV2 && body == Array(#"{"a":1}"#.utf8))
        #expect(environment["REQUEST_METHOD"] == "POST" && environment["REQUEST_URI"] == "/api/connect/meta/events?dryRun=1")
        #expect(environment["QUERY_STRING"] == "dryRun=1" && environment["CONTENT_TYPE"] == "application/json")
        #expect(environment["HTTP_COOKIE"] == "a=1; compass_session=xyz" && environment["REMOTE_ADDR"] == "203.0.113.9")
        #expect(environment["CONTENT_LENGTH"] == "7")
        let request = try CGIRequest.head(from: environment)
        #expect(request.path == "/api/connect/meta/events" && request.query.single("dryRun") == "1")

        var response = CGIResponse.redirect(to: "https://www.facebook.com/v26.0/dialog/oauth?x=1")
        response.headers.append(("Set-Cookie", "a=b; Path=/"))
        let answer = try #require(
            try JSONSerialization.jsonObject(with: Data(LambdaEvent.response(response, shape: .httpV2, isHead: false))) as? [String: Any])
        #expect(answer["statusCode"] as? Int == 302)
        #expect((answer["headers"] as? [String: String])?["Location"] == "https://www.facebook.com/v26.0/dialog/oauth?x=1")
        #expect(answer["cookies"] as? [String] == ["a=b; Path=/"])
        let binary = CGIResponse(status: 200, headers: [("Content-Type", "image/png")], body: [0, 255])
        let encoded = try #require(
            try JSONSerialization.jsonObject(with: Data(LambdaEvent.response(binary, shape: .httpV2, isHead: false))) as? [String: Any])
        #expect(encoded["isBase64Encoded"] as? Bool == true && encoded["body"] as? String == "AP8=")
    }

    @Test func theBodyReadFromItsBytesIsTheBodyTheParserReads() throws {
        // Bodies a tape takes (read from their bytes) and events it declines (an escape in the
        // body or in a header: parsed whole); each body as JSONSerialization reads the event.
        let bodies: [(body: String, base64: Bool)] = [
            (#""eyJhIjoxfQ==""#, true), (#""{\"a\":1}""#, false), (#""{\"a\":\"x\ny\"}""#, false), (#""""#, true), (#""""#, false),
            ("null", false), ("7", false), (#""Zoë""#, false), (#""not base64!""#, true),
        ]
        for (body, base64) in bodies {
            for header in [#""plain""#, #""\"quoted\"""#] {
                let context = #""requestContext":{"http":{"method":"POST"}}"#
                let event =
                    #"{"version":"2.0","rawPath":"/x","headers":{"x-a":"# + header + "}," + context + #","body":"#
                    + body + #","isBase64Encoded":"# + (base64 ? "true" : "false") + "}"
                let parsed = LambdaEvent.parse(Array(event.utf8))
                let object = try #require(try JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any])
                let text = object["body"] as? String
                if base64, let text, Data(base64Encoded: text) == nil {
                    #expect(parsed == .unknown("the body is marked base64 but is not"), "\(event)")
                    continue
                }
                let expected = text.map { base64 ? Array(Data(base64Encoded: $0)!) : Array($0.utf8) } ?? []
                guard case .http(let environment, let read, _) = parsed else {
                    Issue.record("not an HTTP event: \(event)")
                    continue
                }
                #expect(read == expected, "\(event)")
                #expect(environment["HTTP_X_A"] == (header == #""plain""# ? "plain" : "\"quoted\""))
            }
        }
    }

    @Test func aTextBodyQuotedFromItsBytesIsTheSameAnswerAsAString() throws {
        // ASCII JSON with every character that needs an escape, and a body outside ASCII.
        for text in ["{\"a\":\"q\\\"b\\c\",\"n\":\"x\ny\tz\u{1}\",\"u\":\"/\"}", "{\"name\":\"Zoë\"}", ""] {
            var response = CGIResponse(status: 207, headers: [("Content-Type", "application/json"), ("X-A", "1")], body: Array(text.utf8))
            response.headers.append(("Set-Cookie", "a=b"))
            for shape in [LambdaEvent.Shape.httpV2, .restV1(multiValue: false), .loadBalancer(multiValue: true)] {
                let answer = LambdaEvent.response(response, shape: shape, isHead: false)
                let parsed = try JSONParser.parse(answer)
                #expect(parsed["body"] == .string(text))
                // The same bytes as the whole answer serialized as one value.
                #expect(answer == parsed.serialized, "\(String(decoding: answer, as: UTF8.self))")
            }
        }
    }

    @Test func aTextBodyThatIsNotUTF8IsRepairedNotPassedThrough() throws {
        let response = CGIResponse(status: 200, headers: [("Content-Type", "text/plain")], body: [0x61, 0xFF, 0x62, 0xC3])
        let answer = LambdaEvent.response(response, shape: .httpV2, isHead: false)
        #expect(try JSONParser.parse(answer)["body"] == .string("a\u{FFFD}b\u{FFFD}"))
    }

    @Test func restAndLoadBalancerEventsSchedulesAndTheRest() throws {
        let rest =
            #"{"httpMethod":"GET","path":"/api/connect/meta/settings","multiValueHeaders":{"Cookie":["compass_session=abc"]},"multiValueQueryStringParameters":{"adAccountId":["act_1"]},"requestContext":{"identity":{"sourceIp":"198.51.100.1"}},"body":null,"isBase64Encoded":false}"#
        guard case .http(let environment, _, let shape) = LambdaEvent.parse(Array(rest.utf8)) else {
            Issue.record("not an HTTP event")
            return
        }
        #expect(shape == .restV1(multiValue: true) && environment["HTTP_COOKIE"] == "compass_session=abc")
        #expect(environment["QUERY_STRING"] == "adAccountId=act_1" && environment["REMOTE_ADDR"] == "198.51.100.1")
        let multi = try #require(
            try JSONSerialization.jsonObject(with: Data(LambdaEvent.response(.json(200, ["ok": true]), shape: shape, isHead: false)))
                as? [String: Any])
        #expect((multi["multiValueHeaders"] as? [String: [String]])?["Content-Type"] == ["application/json; charset=utf-8"])
        let alb =
            #"{"httpMethod":"GET","path":"/","headers":{"host":"x"},"requestContext":{"elb":{"targetGroupArn":"arn"}},"body":"","isBase64Encoded":false}"#
        guard case .http(_, _, let albShape) = LambdaEvent.parse(Array(alb.utf8)) else {
            Issue.record("not an HTTP event")
            return
        }
        #expect(albShape == .loadBalancer(multiValue: false))
        // A load balancer passes the query as the client sent it, percent-encoded; API Gateway
        // decodes it. Both become the same CGI query string.
        let encodedByClient =
            #"{"httpMethod":"GET","path":"/","headers":{},"queryStringParameters":{"q":"a%2Bb%20c","e%3Dx":"1"},"requestContext":{"elb":{"targetGroupArn":"arn"}},"body":"","isBase64Encoded":false}"#
        let decodedByGateway =
            #"{"httpMethod":"GET","path":"/","headers":{},"queryStringParameters":{"q":"a+b c","e=x":"1"},"requestContext":{"identity":{}},"body":null,"isBase64Encoded":false}"#
        guard case .http(let fromALB, _, _) = LambdaEvent.parse(Array(encodedByClient.utf8)),
            case .http(let fromGateway, _, _) = LambdaEvent.parse(Array(decodedByGateway.utf8))
        else {
            Issue.record("not HTTP events")
            return
        }
        #expect(
            fromALB["QUERY_STRING"] == fromGateway["QUERY_STRING"],
            "\(fromALB["QUERY_STRING"] ?? "") vs \(fromGateway["QUERY_STRING"] ?? "")")
        #expect(QueryParameters(parsing: fromALB["QUERY_STRING"] ?? "").single("q") == "a+b c")
        #expect(LambdaEvent.parse(Array(#"{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}"#.utf8)) == .schedule)
        #expect(LambdaEvent.parse(Array(#"{"source":"aws.scheduler","detail-type":"Scheduled Event"}"#.utf8)) == .schedule)
        guard case .unknown = LambdaEvent.parse(Array(#"{"Records":[{"eventSource":"aws:sqs"}]}"#.utf8)) else {
            Issue.record("an SQS event was taken")
            return
        }
        guard case .unknown = LambdaEvent.parse(Array("not json".utf8)) else {
            Issue.record("garbage was taken")
            return
        }
    }
}
