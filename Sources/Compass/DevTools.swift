/// What the development tool (`compass-dev`) needs from the library. Not used by handlers.
public enum DevTools {
    /// Every environment variable the configuration reads.
    public static var configVariables: [String] { Config.variables }

    /// A session token for `tenantId`, signed with `secret`, valid for `seconds`.
    public static func mintSession(tenantId: String, secret: String, seconds: Int) -> String? {
        guard Tenant.isValidId(tenantId) else { return nil }
        let now = Date().unixSeconds
        return SessionVerifier(secret: Array(secret.utf8)).mint(tenantId: tenantId, expiresAt: now + Int64(seconds), issuedAt: now)
    }

    /// A `signed_request` as Meta sends it to the deauthorize and data-deletion callbacks.
    public static func signedRequest(metaUserId: String, appSecret: String) -> String {
        let payload = Base64URL.encode(Array(#"{"algorithm":"HMAC-SHA256","issued_at":\#(Date().unixSeconds),"user_id":"\#(metaUserId)"}"#.utf8))
        return Base64URL.encode(Crypto.hmacSHA256(key: Array(appSecret.utf8), message: Array(payload.utf8))) + "." + payload
    }

    /// Base64 of 32 random bytes: a `CREDENTIALS_KEY`.
    public static func newCredentialsKey() -> String { Data(Crypto.randomBytes(32)).base64EncodedString() }

    /// 48 random bytes as base64url: a `COMPASS_JWT_SECRET` or `CRON_SECRET`.
    public static func newSecret() -> String { Base64URL.encode(Crypto.randomBytes(48)) }
}

extension DevTools {
    /// Adds 1 to a counter `times` times with compare-and-swap (retrying on conflicts): the
    /// store conformance suite runs several of these processes at once on one key.
    public static func incrementCounter(storeURL: String, key: String, times: Int) -> Bool {
        guard let config = try? Config.load(from: ["STORE_URL": storeURL], workingDirectory: "/"),
              let store = try? CGIHost.makeDependencies(config: config, logger: Logger(function: "dev", level: .error)).store
        else { return false }
        for _ in 0..<times {
            while true {
                do {
                    if let current = try store.get(key) {
                        let value = Int(String(decoding: current.value, as: UTF8.self)) ?? 0
                        try store.compareAndSwap(key, Array(String(value + 1).utf8), expected: current.version, ttl: nil)
                    } else {
                        try store.create(key, Array("1".utf8), ttl: nil)
                    }
                    break
                } catch .versionMismatch, .alreadyExists {
                    continue
                } catch {
                    return false
                }
            }
        }
        return true
    }
}

extension DevTools {
    /// The lighttpd configuration for `scripts/serve` and the end-to-end tests.
    public static func lighttpdConfig(manifestPath: String, binDirectory: String, dataDirectory: String, port: Int,
                                      environment: [String: String], sandbox: Bool) throws -> String {
        LighttpdConfig(manifest: try FunctionsManifest.load(path: manifestPath), binDirectory: binDirectory,
                       dataDirectory: dataDirectory, port: port, environment: environment, sandbox: sandbox).render()
    }
}
