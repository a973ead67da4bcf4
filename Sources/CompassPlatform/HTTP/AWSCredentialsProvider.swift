import Synchronization

/// AWS credentials found the way every AWS SDK finds them, in order: `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY` (with `AWS_SESSION_TOKEN`, which Lambda sets), then the container
/// credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`, or the ECS address with
/// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`), whose credentials are fetched again five minutes
/// before they expire. A process keeps one provider; the credentials are never logged.
package final class AWSCredentialsProvider: Sendable {
    /// Why no credentials could be had, without any secret in it.
    package struct Failure: Error, Equatable, Sendable {
        package var reason: String
    }

    package static let refreshMargin: Double = 300
    /// The ECS task metadata address a relative URI is resolved against.
    package static let ecsHost = "http://169.254.170.2"

    private let environment: [String: String]
    private let transport: any HTTPTransport
    private let clock: any Clock
    private let cached = Mutex<(credentials: AWSCredentials, expires: Double)?>(nil)

    package init(environment: [String: String], transport: any HTTPTransport, clock: any Clock) {
        self.environment = environment
        self.transport = transport
        self.clock = clock
    }

    package func credentials() throws(Failure) -> AWSCredentials {
        if let id = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") {
            return AWSCredentials(accessKeyId: id, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN"))
        }
        let now = clock.now.timeIntervalSince1970
        if let kept = cached.withLock({ $0 }), kept.expires - Self.refreshMargin > now { return kept.credentials }
        let fetched = try fromContainer()
        cached.withLock { $0 = fetched }
        return fetched.credentials
    }

    private func value(_ name: String) -> String? {
        guard let raw = environment[name], !raw.isEmpty else { return nil }
        return raw
    }

    /// The container endpoint's answer: `AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration`.
    private func fromContainer() throws(Failure) -> (credentials: AWSCredentials, expires: Double) {
        let url: String
        if let full = value("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            guard Self.allowedFullURI(full) else {
                throw Failure(reason: "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback or the ECS address")
            }
            url = full
        } else if let relative = value("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), relative.hasPrefix("/") {
            url = Self.ecsHost + relative
        } else {
            throw Failure(
                reason: "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a container endpoint gives them")
        }
        var headers: [(String, String)] = []
        // The token from its file (read anew each time: it is rotated) before the variable, as the SDKs do.
        if let file = value("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            guard let data = FileManager.default.contents(atPath: file),
                let token = String(data: data, encoding: .utf8)?.trimmed, !token.isEmpty
            else { throw Failure(reason: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE names no readable token") }
            headers.append(("Authorization", token))
        } else if let token = value("AWS_CONTAINER_AUTHORIZATION_TOKEN") {
            headers.append(("Authorization", token))
        }
        let answer: HTTPResponse
        do {
            answer = try transport.send(
                HTTPRequest(method: "GET", url: url, headers: headers, timeoutMilliseconds: 2_000, maxResponseBytes: 64 * 1024))
        } catch {
            throw Failure(reason: "the container credentials endpoint could not be reached")
        }
        guard answer.status == 200, let json = try? JSONParser.parse(answer.body), let id = json["AccessKeyId"]?.string,
            let secret = json["SecretAccessKey"]?.string, let expiration = json["Expiration"]?.string,
            let expires = Self.unixSeconds(iso8601: expiration)
        else {
            throw Failure(reason: "the container credentials endpoint answered HTTP \(answer.status) without credentials")
        }
        return (AWSCredentials(accessKeyId: id, secretAccessKey: secret, sessionToken: json["Token"]?.string), expires)
    }

    /// As the SDKs allow it: https anywhere; http only to a loopback address or ECS's and EKS's.
    package static func allowedFullURI(_ url: String) -> Bool {
        if url.hasPrefix("https://") { return true }
        guard url.hasPrefix("http://") else { return false }
        let authority = url.dropFirst("http://".count).prefix { $0 != "/" }
        let host: Substring
        if authority.hasPrefix("[") {
            host = authority.dropFirst().prefix { $0 != "]" }
        } else {
            host = authority.prefix { $0 != ":" }
        }
        return host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "169.254.170.2" || host == "169.254.170.23"
    }

    /// `2026-12-06T12:00:00Z` as Unix seconds.
    package static func unixSeconds(iso8601 text: String) -> Double? {
        let bytes = Array(text.utf8)
        guard bytes.count == 20, bytes[4] == 45, bytes[7] == 45, bytes[10] == 84, bytes[13] == 58, bytes[16] == 58, bytes[19] == 90 else {
            return nil
        }
        func number(_ range: Range<Int>) -> Int64? { Int64(String(decoding: bytes[range], as: UTF8.self)) }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        // Days from the civil date (Howard Hinnant's algorithm), the inverse of SigV4.timestamp.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return Double(days * 86_400 + hour * 3600 + minute * 60 + second)
    }
}
