import Foundation
import Testing

@testable import CompassPlatform
@testable import CompassTestSupport

/// AWS Signature Version 4 against AWS's published vectors: the Signature Version 4 test suite
/// (https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html: get-vanilla,
/// get-vanilla-query-order-key-case, post-vanilla, with its example credentials at
/// 20150830T123600Z) and the S3 API Reference's "Example: GET Object"
/// (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html).
@Suite struct SigV4Tests {
    static let suite = AWSCredentials(accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let suiteTime: Int64 = 1_440_938_160  // 2015-08-30T12:36:00Z
    static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    static func authorization(
        _ request: SigV4.Request, credentials: AWSCredentials = suite, service: String = "service",
        at time: Int64 = suiteTime
    ) -> String? {
        SigV4.sign(request, region: "us-east-1", service: service, credentials: credentials, at: time).first { $0.0 == "Authorization" }?.1
    }

    @Test func theTestSuitesVanillaRequests() {
        let get = SigV4.Request(method: "GET", host: "example.amazonaws.com")
        #expect(
            Self.authorization(get)
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, "
                + "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        // The suite's string to sign ends with the canonical request's digest.
        var dated = get
        dated.headers = [("X-Amz-Date", "20150830T123600Z")]
        #expect(
            Hex.encode(Crypto.sha256(SigV4.canonicalRequest(dated).text))
                == "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63")
        let post = SigV4.Request(method: "POST", host: "example.amazonaws.com")
        #expect(Self.authorization(post)?.hasSuffix("Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b") == true)
        let query = SigV4.Request(method: "GET", host: "example.amazonaws.com", query: [("Param2", "value2"), ("Param1", "value1")])
        #expect(Self.authorization(query)?.hasSuffix("Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500") == true)
    }

    @Test func s3sDocumentedGetObject() {
        let credentials = AWSCredentials(accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        let request = SigV4.Request(
            method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt",
            headers: [("Range", "bytes=0-9"), ("x-amz-content-sha256", Self.emptySHA256)])
        #expect(
            Self.authorization(request, credentials: credentials, service: "s3", at: 1_369_353_600)
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        var dated = request
        dated.headers.append(("x-amz-date", "20130524T000000Z"))
        #expect(
            Hex.encode(Crypto.sha256(SigV4.canonicalRequest(dated).text))
                == "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972")
    }

    /// Temporary credentials (Lambda's) send their session token, and sign it.
    @Test func aSessionTokenIsSentAndSigned() throws {
        let temporary = AWSCredentials(accessKeyId: "ASIAEXAMPLE", secretAccessKey: "secret", sessionToken: "token/with+chars")
        let headers = SigV4.sign(
            SigV4.Request(method: "POST", host: "dynamodb.eu-west-1.amazonaws.com", payload: Array("{}".utf8)), region: "eu-west-1",
            service: "dynamodb", credentials: temporary, at: Self.suiteTime)
        #expect(headers.first { $0.0 == "X-Amz-Security-Token" }?.1 == "token/with+chars")
        let authorization = try #require(headers.first { $0.0 == "Authorization" }?.1)
        #expect(authorization.contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"))
        #expect(authorization.contains("Credential=ASIAEXAMPLE/20150830/eu-west-1/dynamodb/aws4_request"))
    }

    @Test func timesAreWrittenInUTC() {
        #expect(SigV4.timestamp(Self.suiteTime) == ("20150830T123600Z", "20150830"))
        #expect(SigV4.timestamp(0) == ("19700101T000000Z", "19700101"))
        #expect(SigV4.timestamp(1_709_164_800) == ("20240229T000000Z", "20240229"))
        #expect(SigV4.timestamp(1_798_761_599) == ("20261231T235959Z", "20261231"))
    }
}
