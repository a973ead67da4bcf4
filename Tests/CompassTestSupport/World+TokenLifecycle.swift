// Built for tests only: Testing and @testable imports exist in debug builds, and a release
// build (scripts/serve, scripts/package-lambda) compiles this module empty.
#if DEBUG
    import Foundation
    import Synchronization
    import Testing

    @testable import CompassDev
    @testable import CompassHandlers
    @testable import CompassHosts
    @testable import CompassMeta
    @testable import CompassPlatform
    @testable import CompassStorage

    extension World {
        package func storedToken(_ tenant: String = "tenant_a") throws -> String {
            try CredentialCipher(keys: config.platform.credentialKeys!, random: SecureRandom())
                .open(credential(tenant)!.token, context: IntegrationCredential.sealContext(tenantId: tenant))
        }

        package func refreshTokens() -> TokenRefresher.Summary { try! TokenRefresher(dependencies: dependencies).run() }

        /// A signed_request as Meta sends it.
        package func signedRequest(
            user: String, issuedAt: Int64? = nil, secret: String = World.appSecret, algorithm: String = "HMAC-SHA256"
        )
            -> String
        {
            let payload = Base64URL.encode(
                Array(#"{"algorithm":"\#(algorithm)","issued_at":\#(issuedAt ?? clock.now.unixSeconds),"user_id":"\#(user)"}"#.utf8))
            return Base64URL.encode(Crypto.hmacSHA256(key: Array(secret.utf8), message: Array(payload.utf8))) + "." + payload
        }

        package func metaCallback(_ path: String, _ signed: String) -> CGIResponse {
            run(
                MetaWebhooksHandler.self,
                request(
                    "POST", path, tenant: nil, headers: ["content-type": "application/x-www-form-urlencoded"],
                    body: "signed_request=" + QueryParameters.encode(signed)))
        }
    }
#endif
