/// What the development tool (`compass-dev`) needs from the library. Not used by handlers.
public enum DevTools {
    /// A session token for `tenantId`, signed with `secret`, valid for `seconds`.
    public static func mintSession(tenantId: String, secret: String, seconds: Int) -> String? {
        guard Tenant.isValidId(tenantId) else { return nil }
        let now = Date().unixSeconds
        return SessionVerifier(secret: Array(secret.utf8)).mint(tenantId: tenantId, expiresAt: now + Int64(seconds), issuedAt: now)
    }

    /// Base64 of 32 random bytes: a `CREDENTIALS_KEY`.
    public static func newCredentialsKey() -> String { Data(Crypto.randomBytes(32)).base64EncodedString() }

    /// 48 random bytes as base64url: a `COMPASS_JWT_SECRET` or `CRON_SECRET`.
    public static func newSecret() -> String { Base64URL.encode(Crypto.randomBytes(48)) }
}
