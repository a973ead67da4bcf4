import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct CGIRequestTests {
    @Test func readsVariablesHeadersAndCookies() throws {
        let request = try CGIRequest.head(from: [
            "REQUEST_METHOD": "GET", "REQUEST_URI": "/api/connect/meta?x=1", "QUERY_STRING": "x=1",
            "HTTP_COOKIE": "a=1; compass_session=\"tok\"; a=2", "HTTP_X_FORWARDED_FOR": "1.2.3.4",
            "HTTP_PROXY": "http://evil:8080", "CONTENT_TYPE": "application/json",
        ])
        #expect(request.method == "GET")
        #expect(request.path == "/api/connect/meta")
        #expect(request.query.single("x") == "1")
        #expect(request.header("X-Forwarded-For") == "1.2.3.4")
        #expect(request.header("content-type") == "application/json")
        #expect(request.header("proxy") == nil)
        #expect(request.cookieValues("a") == ["1", "2"])
        #expect(request.cookieValues("compass_session") == ["tok"])
        #expect(request.cookieValues("missing") == [])
    }

    @Test func pathFallsBackToScriptNameAndPathInfo() throws {
        let request = try CGIRequest.head(from: ["REQUEST_METHOD": "POST", "SCRIPT_NAME": "/api", "PATH_INFO": "/x"])
        #expect(request.path == "/api/x")
    }

    @Test func missingOrOddMethodIsBadRequest() {
        #expect(throws: APIError.self) { try CGIRequest.head(from: [:]) }
        #expect(throws: APIError.self) { try CGIRequest.head(from: ["REQUEST_METHOD": "get me"]) }
    }

    @Test(arguments: [("", 0), ("0", 0), ("12", 12)])
    func acceptsWellFormedContentLengths(raw: String, expected: Int) throws {
        #expect(try CGIRequest.contentLength(raw, limit: 100) == expected)
    }

    @Test(arguments: ["-1", "1e3", " 5", "abc", "99999999999999999999999"])
    func rejectsMalformedContentLength(raw: String) {
        #expect(throws: APIError.badRequest("bad_content_length", "Content-Length must be a non-negative whole number.")) {
            try CGIRequest.contentLength(raw, limit: 100)
        }
    }

    @Test func rejectsBodiesOverTheCapWithoutReadingThem() {
        #expect(throws: APIError(413, "body_too_large", "The request body is larger than 100 bytes.")) {
            try CGIRequest.contentLength("101", limit: 100)
        }
    }

    @Test func readsExactlyContentLengthBytes() throws {
        let pipe = Pipe()
        pipe.fileHandleForWriting.write(Data("{\"a\":1}trailing".utf8))
        let body = try CGIRequest.readBody(
            environment: ["CONTENT_LENGTH": "7"],
            descriptor: pipe.fileHandleForReading.fileDescriptor, limits: .init())
        #expect(String(decoding: body, as: UTF8.self) == "{\"a\":1}")
    }

    @Test func shortBodyWithClosedInputIsIncomplete() {
        let pipe = Pipe()
        pipe.fileHandleForWriting.write(Data("abc".utf8))
        try? pipe.fileHandleForWriting.close()
        #expect(throws: APIError.self) {
            try CGIRequest.readBody(
                environment: ["CONTENT_LENGTH": "10"],
                descriptor: pipe.fileHandleForReading.fileDescriptor, limits: .init())
        }
    }

    @Test func shortBodyWithOpenInputGivesUpAtTheDeadline() {
        let pipe = Pipe()
        pipe.fileHandleForWriting.write(Data("abc".utf8))
        // The writer stays open: without a deadline this read would wait forever.
        #expect(throws: APIError.badRequest("incomplete_body", "The request body ended before Content-Length bytes arrived.")) {
            try CGIRequest.readBody(
                environment: ["CONTENT_LENGTH": "10"],
                descriptor: pipe.fileHandleForReading.fileDescriptor,
                limits: .init(maxBodyBytes: 100, bodyDeadlineMilliseconds: 200))
        }
        withExtendedLifetime(pipe) {}
    }
}
