import CompassMeta
import CompassPlatform
import CompassStorage

/// POST /api/connect/meta/disconnect: revoke at Meta, then delete everything of the tenant
/// (credential, integration, events waiting or dead, sent markers, delivery figures, leases).
/// Deleting happens even when Meta cannot be reached; the answer says so.
package struct DisconnectHandler: Handler {
    package static let name = "disconnect"
    package static let methods = ["POST"]
    package static let paths = ["/api/connect/meta/disconnect"]
    package let dependencies: Dependencies

    package struct Answer: Encodable, Equatable {
        package var disconnected: Bool
        package var revokedAtMeta: Bool
        /// Why the token was not revoked, when it was not.
        package var revokeSkipped: String?
    }

    package func handle(_ request: CGIRequest) throws -> CGIResponse {
        let session = try dependencies.authenticate(request)
        let tenant = session.tenantId
        let records = dependencies.records
        let logger = dependencies.logger

        // Misconfiguration is a 500 before anything is deleted: never drop a token unrevoked.
        _ = try dependencies.config.meta.app()
        _ = try dependencies.config.platform.credentialCipher()

        let credential = try records.loadUnlessCorrupt(IntegrationCredential.self, at: RecordKey.credential(tenant))?.0
        let integration = try records.loadUnlessCorrupt(Integration.self, at: RecordKey.integration(tenant))?.0

        var result = Answer(disconnected: true, revokedAtMeta: false, revokeSkipped: nil)
        if let credential {
            result = revoke(credential, tenant: tenant)
        } else {
            result.revokeSkipped = integration == nil ? "not_connected" : "no_credential"
        }

        try IntegrationLifecycle(dependencies: dependencies).purge(
            tenant: tenant, metaUserId: credential?.metaUserId ?? integration?.metaUserId)
        logger.info(
            "meta_disconnected",
            [
                "revoked_at_meta": .bool(result.revokedAtMeta),
                "revoke_skipped": .string(result.revokeSkipped ?? ""),
            ])
        return .json(200, result)
    }

    /// Revokes the app's permissions for the Meta user, unless another tenant still uses a
    /// grant of the same Meta user: Meta's revoke is per user and would cut that tenant off too.
    /// A system user (Facebook Login for Business) belongs to one connection and is never
    /// treated as shared.
    private func revoke(_ credential: IntegrationCredential, tenant: String) -> Answer {
        var result = Answer(disconnected: true, revokedAtMeta: false, revokeSkipped: nil)
        let logger = dependencies.logger
        do {
            if credential.tokenType != "system_user",
                try MetaUserIndex(store: dependencies.store).hasTenant(of: credential.metaUserId, besides: tenant)
            {
                result.revokeSkipped = "grant_shared_with_another_tenant"
                return result
            }
            let token = try dependencies.openToken(credential, tenant: tenant)
            result.revokedAtMeta = try dependencies.graph().revokePermissions(token: token)
            if !result.revokedAtMeta { result.revokeSkipped = "meta_refused" }
        } catch let failure as GraphFailure {
            if failure.kind == .invalidToken {
                // Meta already considers the token dead: nothing live remains to revoke.
                result.revokedAtMeta = true
            } else {
                result.revokeSkipped = "meta_unreachable"
                logger.warn("revoke_failed", failure.logFields)
            }
        } catch {
            result.revokeSkipped = "credential_unreadable"
            logger.error("revoke_failed", ["error": .string("\(error)")])
        }
        return result
    }

    package init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }
}
