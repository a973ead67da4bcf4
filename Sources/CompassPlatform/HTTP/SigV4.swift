/// AWS credentials as the SDKs find them (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, and on
/// Lambda or with temporary credentials `AWS_SESSION_TOKEN`).
package struct AWSCredentials: Sendable, Equatable {
    package var accessKeyId: String
    package var secretAccessKey: String
    package var sessionToken: String?

    package init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
}

/// AWS Signature Version 4, the steps as AWS documents them ("Create a signed AWS API
/// request"): the canonical request, the string to sign, the signing key derived from the secret
/// through the date, the region and the service, and the `Authorization` header. HMAC-SHA256
/// and SHA-256 are libcrypto's (`Crypto`). Held against AWS's published test vectors
/// (`SigV4Tests`).
package enum SigV4 {
    package static let algorithm = "AWS4-HMAC-SHA256"

    /// A request to sign: its URL path already URI-encoded (DynamoDB's is `/`), its query as
    /// name and value pairs, its headers as they will be sent.
    package struct Request: Sendable {
        package var method: String
        package var host: String
        package var path: String
        package var query: [(String, String)]
        package var headers: [(String, String)]
        package var payload: [UInt8]

        package init(
            method: String, host: String, path: String = "/", query: [(String, String)] = [],
            headers: [(String, String)] = [], payload: [UInt8] = []
        ) {
            self.method = method
            self.host = host
            self.path = path
            self.query = query
            self.headers = headers
            self.payload = payload
        }
    }

    /// The headers to add to `request`: `X-Amz-Date`, `X-Amz-Security-Token` with temporary
    /// credentials, and `Authorization`.
    package static func sign(
        _ request: Request, region: String, service: String, credentials: AWSCredentials,
        at unixSeconds: Int64
    ) -> [(String, String)] {
        let (amzDate, day) = timestamp(unixSeconds)
        var added = [("X-Amz-Date", amzDate)]
        if let token = credentials.sessionToken { added.append(("X-Amz-Security-Token", token)) }
        var signedRequest = request
        signedRequest.headers += added
        let (canonical, signedHeaders) = canonicalRequest(signedRequest)
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = [algorithm, amzDate, scope, Hex.encode(Crypto.sha256(canonical))].joined(separator: "\n")
        let key = signingKey(secret: credentials.secretAccessKey, day: day, region: region, service: service)
        let signature = Hex.encode(Crypto.hmacSHA256(key: key, message: Array(stringToSign.utf8)))
        let authorization =
            "\(algorithm) Credential=\(credentials.accessKeyId)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return added + [("Authorization", authorization)]
    }

    /// The canonical request and its signed headers' names: every header given and `host`,
    /// names lower-cased and sorted, values trimmed with inner runs of spaces folded to one.
    package static func canonicalRequest(_ request: Request) -> (text: String, signedHeaders: String) {
        var headers: [String: String] = ["host": request.host]
        for (name, value) in request.headers {
            let folded = value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            let key = name.lowercased()
            headers[key] = headers[key].map { $0 + "," + folded } ?? folded
        }
        let names = headers.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(headers[$0]!)\n" }.joined()
        let encoded: [(name: String, value: String)] = request.query.map { (encode($0.0), encode($0.1)) }
        let ordered = encoded.sorted { first, second in
            first.name == second.name ? first.value < second.value : first.name < second.name
        }
        let query = ordered.map { pair -> String in pair.name + "=" + pair.value }.joined(separator: "&")
        let signedHeaders = names.joined(separator: ";")
        let text = [
            request.method, request.path.isEmpty ? "/" : request.path, query, canonicalHeaders, signedHeaders,
            Hex.encode(Crypto.sha256(request.payload)),
        ].joined(separator: "\n")
        return (text, signedHeaders)
    }

    /// HMAC-SHA256 chained from `AWS4` + the secret through the day, the region, the service
    /// and `aws4_request`.
    package static func signingKey(secret: String, day: String, region: String, service: String) -> [UInt8] {
        var key = Crypto.hmacSHA256(key: Array(("AWS4" + secret).utf8), message: Array(day.utf8))
        for part in [region, service, "aws4_request"] { key = Crypto.hmacSHA256(key: key, message: Array(part.utf8)) }
        return key
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters, as SigV4 asks.
    package static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if ASCII.isAlphanumeric(byte) || byte == 45 || byte == 46 || byte == 95 || byte == 126 {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + Hex.encode([byte]).uppercased()
            }
        }
        return out
    }

    /// `20150830T123600Z` and `20150830` for a Unix time (UTC).
    package static func timestamp(_ unixSeconds: Int64) -> (amzDate: String, day: String) {
        let time = CivilTime(unixSeconds: unixSeconds)
        let two = CivilTime.two
        let date = "\(time.year)\(two(time.month))\(two(time.day))"
        return (date + "T" + two(time.hour) + two(time.minute) + two(time.second) + "Z", date)
    }
}
