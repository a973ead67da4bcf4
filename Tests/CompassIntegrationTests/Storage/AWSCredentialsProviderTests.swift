import Foundation
import Synchronization
import Testing

@testable import CompassPlatform
@testable import CompassTestSupport

/// AWS credentials as the SDKs find them: the environment first, then a container credentials
/// endpoint (emulated on loopback from AWS's documented answer: `AccessKeyId`,
/// `SecretAccessKey`, `Token`, `Expiration`, with its authorization token), fetched again five
/// minutes before they expire.
@Suite struct AWSCredentialsProviderTests {
    @Test func theEnvironmentComesFirst() throws {
        let provider = AWSCredentialsProvider(
            environment: ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token"],
            transport: UnreachableTransport(), clock: TestClock())
        #expect(try provider.credentials() == AWSCredentials(accessKeyId: "AKID", secretAccessKey: "secret", sessionToken: "token"))
        let none = AWSCredentialsProvider(environment: [:], transport: UnreachableTransport(), clock: TestClock())
        #expect(throws: AWSCredentialsProvider.Failure.self) { try none.credentials() }
    }

    @Test func theContainerEndpointIsAskedAndAskedAgainBeforeExpiry() throws {
        let clock = TestClock(Date(timeIntervalSince1970: 1_795_000_000))
        let served = Mutex(0)
        let server = try LoopbackServer(headers: { method, target, headers, _ in
            guard method == "GET", target == "/creds", headers["authorization"] == "Bearer container-token" else {
                return HTTPResponse(status: 403, body: [])
            }
            let count = served.withLock {
                $0 += 1
                return $0
            }
            // An hour's credentials from the test clock's now.
            let expiration = Date(timeIntervalSince1970: clock.now.timeIntervalSince1970 + 3600).formatted(.iso8601)
            let body = #"{"AccessKeyId":"ASIA\#(count)","SecretAccessKey":"s\#(count)","Token":"t\#(count)","Expiration":"\#(expiration)"}"#
            return HTTPResponse(status: 200, headers: ["content-type": "application/json"], body: Array(body.utf8))
        })
        defer { server.stop() }
        let provider = AWSCredentialsProvider(
            environment: [
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": server.baseURL + "/creds",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer container-token",
            ], transport: CurlTransport(), clock: clock)
        #expect(try provider.credentials() == AWSCredentials(accessKeyId: "ASIA1", secretAccessKey: "s1", sessionToken: "t1"))
        clock.advance(3000)  // 54 minutes: still more than five left
        #expect(try provider.credentials().accessKeyId == "ASIA1")
        clock.advance(400)  // under five minutes left: fetched again
        #expect(try provider.credentials().accessKeyId == "ASIA2")
        #expect(served.withLock { $0 } == 2)
        // A wrong token is refused by the endpoint, and the failure says so without any secret.
        let refused = AWSCredentialsProvider(
            environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": server.baseURL + "/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "wrong"],
            transport: CurlTransport(), clock: clock)
        #expect(throws: AWSCredentialsProvider.Failure(reason: "the container credentials endpoint answered HTTP 403 without credentials"))
        {
            try refused.credentials()
        }
        // The token from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE comes before the variable.
        let folder = TemporaryFolder()
        try Data("Bearer container-token\n".utf8).write(to: URL(fileURLWithPath: folder.path + "/token"))
        let fromFile = AWSCredentialsProvider(
            environment: [
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": server.baseURL + "/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "wrong",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": folder.path + "/token",
            ], transport: CurlTransport(), clock: clock)
        #expect(try fromFile.credentials().accessKeyId == "ASIA3")
    }

    @Test func plainHTTPOnlyToALoopbackOrTheContainerAddresses() {
        for allowed in [
            "https://creds.example/x", "http://127.0.0.1:9/x", "http://localhost/x", "http://[::1]:80/x", "http://169.254.170.2/x",
        ] {
            #expect(AWSCredentialsProvider.allowedFullURI(allowed), "\(allowed)")
        }
        for refused in ["http://creds.example/x", "http://10.0.0.1/x", "ftp://127.0.0.1/x"] {
            #expect(!AWSCredentialsProvider.allowedFullURI(refused), "\(refused)")
        }
        #expect(AWSCredentialsProvider.unixSeconds(iso8601: "2015-08-30T12:36:00Z") == 1_440_938_160)
        #expect(AWSCredentialsProvider.unixSeconds(iso8601: "2024-02-29T00:00:00Z") == 1_709_164_800)
        #expect(AWSCredentialsProvider.unixSeconds(iso8601: "not a time") == nil)
    }
}
