import Foundation
import Synchronization
import Testing

@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// DynamoDB's JSON API through the signed client, against moto's server (an emulator of
/// DynamoDB, not AWS): tables, conditional writes as the store's create-if-absent, reads,
/// ordered queries by key prefix, errors by DynamoDB's type, and throttling tried again.
@Suite(.serialized) struct DynamoDBClientTests {
    static func client(_ endpoint: String, transport: any HTTPTransport = CurlTransport()) -> DynamoDBClient {
        DynamoDBClient(
            endpoint: endpoint, region: "eu-west-1",
            credentials: AWSCredentialsProvider(
                environment: ["AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "test-secret"], transport: transport,
                clock: SystemClock()), transport: transport, clock: SystemClock())
    }

    static var deadline: Int64 { monotonicMilliseconds() + 10_000 }

    static func item(_ pk: String, _ sk: String, _ value: String) -> JSONValue {
        .object(["pk": .object(["S": .string(pk)]), "sk": .object(["S": .string(sk)]), "v": .object(["S": .string(value)])])
    }

    @Test func tablesConditionalWritesReadsAndOrderedQueriesOnMoto() throws {
        let moto = try MotoServer()
        let dynamo = Self.client(moto.endpoint)
        #expect(throws: DynamoDBClient.Failure.tableNotFound) {
            try dynamo.call("DescribeTable", .object(["TableName": "compass"]), deadline: Self.deadline)
        }
        _ = try dynamo.call(
            "CreateTable",
            .object([
                "TableName": "compass", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": .array([
                    .object(["AttributeName": "pk", "AttributeType": "S"]), .object(["AttributeName": "sk", "AttributeType": "S"]),
                ]),
                "KeySchema": .array([
                    .object(["AttributeName": "pk", "KeyType": "HASH"]), .object(["AttributeName": "sk", "KeyType": "RANGE"]),
                ]),
            ]), deadline: Self.deadline)
        // Create-if-absent: the second write of the same key fails its condition.
        func create(_ sk: String, _ value: String) throws {
            _ = try dynamo.call(
                "PutItem",
                .object([
                    "TableName": "compass", "Item": Self.item("meta/outbox", sk, value),
                    "ConditionExpression": "attribute_not_exists(pk)",
                ]), deadline: Self.deadline)
        }
        try create("meta/outbox/t1/b", "second")
        try create("meta/outbox/t1/a", "first")
        try create("meta/outbox/t2/a", "other tenant")
        #expect(throws: DynamoDBClient.Failure.conditionFailed) { try create("meta/outbox/t1/a", "again") }
        let got = try dynamo.call(
            "GetItem",
            .object([
                "TableName": "compass", "Key": .object(["pk": .object(["S": "meta/outbox"]), "sk": .object(["S": "meta/outbox/t1/a"])]),
            ]),
            deadline: Self.deadline)
        #expect(got["Item"]?["v"]?["S"]?.string == "first")
        // A key prefix in the sort key's order.
        let page = try dynamo.call(
            "Query",
            .object([
                "TableName": "compass", "KeyConditionExpression": "pk = :p AND begins_with(sk, :prefix)",
                "ExpressionAttributeValues": .object([
                    ":p": .object(["S": "meta/outbox"]), ":prefix": .object(["S": "meta/outbox/t1/"]),
                ]),
            ]), deadline: Self.deadline)
        #expect(page["Items"]?.array?.compactMap { $0["sk"]?["S"]?.string } == ["meta/outbox/t1/a", "meta/outbox/t1/b"])
    }

    /// Throttling is tried again while the deadline allows; other refusals are the answer.
    @Test func throttlingIsTriedAgainWithinTheDeadline() throws {
        final class Throttling: HTTPTransport, @unchecked Sendable {
            let calls = Mutex(0)
            func send(_ request: HTTPRequest) throws(HTTPFailure) -> HTTPResponse {
                let call = calls.withLock {
                    $0 += 1
                    return $0
                }
                guard call > 2 else {
                    return HTTPResponse(
                        status: 400,
                        body: Array(
                            #"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}"#
                                .utf8))
                }
                return HTTPResponse(status: 200, body: Array(#"{"Item":{}}"#.utf8))
            }
        }
        let throttling = Throttling()
        let dynamo = Self.client("https://dynamodb.eu-west-1.amazonaws.com", transport: throttling)
        #expect(try dynamo.call("GetItem", .object([:]), deadline: Self.deadline)["Item"] != nil)
        #expect(throttling.calls.withLock { $0 } == 3)
        let refused = DynamoDBClient.failure(
            HTTPResponse(status: 400, body: Array(#"{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}"#.utf8)))
        #expect(refused == .refused("ValidationException"))
    }

    /// AWS's answers can quote what a request carried; the store's errors carry DynamoDB's error
    /// type only, never a message, a key or a credential.
    @Test func noCredentialOrMessageReachesAStoreError() throws {
        struct Refusing: HTTPTransport {
            func send(_ request: HTTPRequest) throws(HTTPFailure) -> HTTPResponse {
                let quoted = request.headers.map { "\($0.0): \($0.1)" }.joined(separator: "; ")
                return HTTPResponse(
                    status: 400,
                    body: Array(
                        #"{"__type":"com.amazon.coral.service#UnrecognizedClientException","message":"invalid: test-secret \#(quoted)"}"#
                            .utf8))
            }
        }
        let store = DynamoDBStore(table: "compass", client: Self.client("https://dynamodb.eu-west-1.amazonaws.com", transport: Refusing()))
        do {
            _ = try store.get("meta/integration/tenant_a")
            Issue.record("a refused call answered")
        } catch {
            let text = "\(error)"
            #expect(text.contains("UnrecognizedClientException"), "\(text)")
            for secret in ["test-secret", "AKIDTEST", "Signature=", "invalid:"] { #expect(!text.contains(secret), "\(text)") }
        }
    }
}
