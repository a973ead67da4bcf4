import CompassPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// DynamoDB's JSON API (version 2012-08-10) over the HTTP client: `POST /` with
/// `X-Amz-Target: DynamoDB_20120810.<Operation>`, signed with AWS Signature Version 4 for the
/// `dynamodb` service. Throttling and server errors are tried again with a growing pause, as long
/// as the call's deadline allows; any other refusal is the answer, by DynamoDB's error type.
package struct DynamoDBClient: Sendable {
    package let endpoint: String
    package let region: String
    package let credentials: AWSCredentialsProvider
    package let transport: any HTTPTransport
    package let clock: any Clock

    /// A call DynamoDB did not answer with success.
    package enum Failure: Error, Equatable, Sendable {
        /// A `ConditionExpression` did not hold (create-if-absent, compare-and-swap).
        case conditionFailed
        case tableNotFound
        /// Throttled or failing past the call's deadline.
        case unavailable(String)
        /// Any other refusal: DynamoDB's error type (never a value or a secret).
        case refused(String)
    }

    package init(endpoint: String, region: String, credentials: AWSCredentialsProvider, transport: any HTTPTransport, clock: any Clock) {
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
        self.transport = transport
        self.clock = clock
    }

    /// `https://dynamodb.<region>.amazonaws.com` unless an endpoint is given (a local server).
    package static func endpoint(region: String, override: String?) -> String {
        override ?? "https://dynamodb.\(region).amazonaws.com"
    }

    /// One operation with its request body; its answer. `deadline` (`monotonicMilliseconds()`)
    /// bounds the retries.
    package func call(_ operation: String, _ body: JSONValue, deadline: Int64) throws(Failure) -> JSONValue {
        let payload = body.serialized
        var pause: UInt32 = 50_000
        while true {
            let answer = try send(operation, payload, deadline: deadline)
            if answer.status == 200 { return (try? JSONParser.parse(answer.body)) ?? .object([:]) }
            let failure = Self.failure(answer)
            guard case .unavailable = failure, monotonicMilliseconds() + Int64(pause / 1000) < deadline else { throw failure }
            usleep(pause)
            pause = min(pause * 2, 1_000_000)
        }
    }

    private func send(_ operation: String, _ payload: [UInt8], deadline: Int64) throws(Failure) -> HTTPResponse {
        let host = endpoint.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first.map(String.init) ?? endpoint
        let headers = [("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", "DynamoDB_20120810.\(operation)")]
        let keys: AWSCredentials
        do {
            keys = try credentials.credentials()
        } catch {
            throw .unavailable(error.reason)
        }
        let signed = SigV4.sign(
            SigV4.Request(method: "POST", host: host, headers: headers, payload: payload), region: region, service: "dynamodb",
            credentials: keys, at: clock.now.unixSeconds)
        let remaining = Int(deadline - monotonicMilliseconds())
        guard remaining > 0 else { throw .unavailable("DynamoDB not asked: the call's time ran out") }
        do {
            return try transport.send(
                HTTPRequest(
                    method: "POST", url: endpoint + "/", headers: headers + signed, body: payload, timeoutMilliseconds: remaining,
                    maxResponseBytes: 16 << 20))
        } catch {
            throw .unavailable("DynamoDB could not be reached")
        }
    }

    /// DynamoDB's error body: `{"__type": "...#Name", "message": ...}`.
    static func failure(_ answer: HTTPResponse) -> Failure {
        let json = try? JSONParser.parse(answer.body)
        let type = (json?["__type"]?.string ?? "").split(separator: "#").last.map(String.init) ?? ""
        switch type {
        case "ConditionalCheckFailedException": return .conditionFailed
        case "ResourceNotFoundException": return .tableNotFound
        case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "InternalServerError",
            "ServiceUnavailable":
            return .unavailable("DynamoDB is throttling or failing (\(type))")
        default:
            if answer.status >= 500 { return .unavailable("DynamoDB answered HTTP \(answer.status)") }
            return .refused(type.isEmpty ? "HTTP \(answer.status)" : type)
        }
    }
}
