import CompassPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// Secrets a Lambda deployment keeps where AWS users keep them, never in a plain environment
/// variable: `<VARIABLE>_SECRET_ID` names a Secrets Manager secret (its ARN or name; the secret's
/// string is the value) or, as `ssm:<name>`, an SSM Parameter Store `SecureString` parameter.
/// They are read through the AWS Parameters and Secrets Lambda Extension
/// (`http://localhost:$PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`, 2773 by default), which takes the
/// function's session token in `X-Aws-Parameters-Secrets-Token` and answers only while an
/// invocation runs: the first invocation reads them, once for the process.
package enum LambdaSecrets {
    package static let suffix = "_SECRET_ID"

    /// The variables the environment names secrets for, with their ids.
    package static func references(in environment: [String: String]) -> [(variable: String, id: String)] {
        environment.compactMap { name, id in
            guard name.hasSuffix(suffix), name.count > suffix.count, !id.isEmpty else { return nil }
            return (String(name.dropLast(suffix.count)), id)
        }.sorted { $0.variable < $1.variable }
    }

    /// `environment` with each referenced secret's value set under its variable. A failure names
    /// the variable and the extension's status, never a value.
    package static func resolve(_ environment: [String: String], transport: any HTTPTransport) -> Result<[String: String], ConfigError> {
        var resolved = environment
        let port =
            environment["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"].flatMap { Int($0) }.flatMap { (1...65_535).contains($0) ? $0 : nil }
            ?? 2773
        guard let token = environment["AWS_SESSION_TOKEN"], !token.isEmpty else {
            return .failure(ConfigError(variable: "AWS_SESSION_TOKEN", problem: "is needed to read the secrets (Lambda sets it)"))
        }
        for (variable, id) in references(in: environment) {
            let request: HTTPRequest
            if id.hasPrefix("ssm:") {
                let name = QueryParameters.encode(String(id.dropFirst(4)))
                request = HTTPRequest(
                    method: "GET", url: "http://localhost:\(port)/systemsmanager/parameters/get?name=\(name)&withDecryption=true",
                    headers: [("X-Aws-Parameters-Secrets-Token", token)], timeoutMilliseconds: 3_000, maxResponseBytes: 128 * 1024)
            } else {
                request = HTTPRequest(
                    method: "GET", url: "http://localhost:\(port)/secretsmanager/get?secretId=\(QueryParameters.encode(id))",
                    headers: [("X-Aws-Parameters-Secrets-Token", token)], timeoutMilliseconds: 3_000, maxResponseBytes: 128 * 1024)
            }
            switch read(request, transport: transport, ssm: id.hasPrefix("ssm:")) {
            case .success(let value): resolved[variable] = value
            case .failure(let why): return .failure(ConfigError(variable: variable + suffix, problem: why.text))
            }
        }
        return .success(resolved)
    }

    /// One secret's value; the extension may still be starting, so a refused connection or a
    /// 5xx is tried again twice.
    private struct Unread: Error { var text: String }

    private static func read(_ request: HTTPRequest, transport: any HTTPTransport, ssm: Bool) -> Result<String, Unread> {
        var last = "the Parameters and Secrets extension could not be reached"
        for attempt in 0..<3 {
            if attempt > 0 { usleep(200_000) }
            let response: HTTPResponse
            do {
                response = try transport.send(request)
            } catch {
                continue
            }
            guard response.status == 200 else {
                last = "could not be read: the Parameters and Secrets extension answered HTTP \(response.status)"
                if response.status >= 500 { continue }
                return .failure(Unread(text: last))
            }
            let answer = try? JSONParser.parse(response.body)
            let value = ssm ? answer?["Parameter"]?["Value"]?.string : answer?["SecretString"]?.string
            guard let value, !value.isEmpty else { return .failure(Unread(text: "names a secret without a string value")) }
            return .success(value)
        }
        return .failure(Unread(text: last))
    }
}
