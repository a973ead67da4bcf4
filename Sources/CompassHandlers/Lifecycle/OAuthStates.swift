import CompassPlatform
import CompassStorage

/// The OAuth `state` of a connect, made and checked without a record: 16 random bytes, the
/// Unix second it was issued (8 bytes, big-endian) and the first 16 bytes of an HMAC-SHA256 over
/// the tenant, the nonce and that second, under a key of its own derived from the session
/// secret; in base64url, 54 characters. Connect writes nothing, so a connect that is abandoned
/// leaves nothing behind. The callback checks that the state is the session's tenant's and at
/// most `OAuthState.lifetimeSeconds` old, and uses it once: the first callback to present it
/// creates `meta/oauth-state/<digest of the state>` (for as long as the state could be valid),
/// and any later one finds that record taken.
package struct OAuthStates {
    /// A state's bytes: nonce, issue time, tag.
    static let byteCount = 40
    private static let nonceCount = 16
    private static let tagCount = 16
    /// How far a state's issue time may be ahead of the callback's clock (another host's).
    package static let clockSkewSeconds: Int64 = 60

    private let key: [UInt8]

    package init(sessionSecret: [UInt8]) {
        key = Crypto.hmacSHA256(key: sessionSecret, message: Array("compass/oauth-state/v1".utf8))
    }

    /// A new state for `tenant`, from `nonce` (16 random bytes), issued `now`.
    package func issue(tenant: String, nonce: [UInt8], at now: Date) -> String {
        var bytes = Array(nonce.prefix(Self.nonceCount))
        withUnsafeBytes(of: UInt64(bitPattern: now.unixSeconds).bigEndian) { bytes += $0 }
        bytes += tag(tenant: tenant, nonceAndTime: bytes)
        return Base64URL.encode(bytes)
    }

    /// What a presented state is for the session's tenant at `now`.
    package enum Check: Equatable {
        case valid
        /// Made by this connector and within its time, but for another tenant (or altered).
        case otherTenant
        /// Older than its lifetime, or issued further ahead than clocks differ.
        case expired
        /// Not a state of this form (an earlier build's stored state, or garbage).
        case notSigned
    }

    package func check(_ state: String, tenant: String, now: Date) -> Check {
        guard state.utf8.count <= 64, let bytes = Base64URL.decode(state), bytes.count == Self.byteCount else { return .notSigned }
        let issued = bytes[Self.nonceCount..<(Self.nonceCount + 8)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let age = now.unixSeconds - Int64(bitPattern: issued)
        guard age >= -Self.clockSkewSeconds, age <= Int64(OAuthState.lifetimeSeconds) else { return .expired }
        let given = Array(bytes[(Self.nonceCount + 8)...])
        let expected = tag(tenant: tenant, nonceAndTime: Array(bytes[..<(Self.nonceCount + 8)]))
        return Crypto.constantTimeEquals(given, expected) ? .valid : .otherTenant
    }

    /// Marks `state` used: false when it was used before. Kept for the state's lifetime and the
    /// skew allowed, so that it outlives every moment the state could be valid.
    package static func use(_ state: String, store: any KeyValueStore) throws(StoreError) -> Bool {
        do {
            try store.create(
                RecordKey.oauthState(nonce: state), Array("used".utf8), ttl: OAuthState.lifetimeSeconds + Int(clockSkewSeconds))
            return true
        } catch .alreadyExists {
            return false
        }
    }

    private func tag(tenant: String, nonceAndTime: [UInt8]) -> [UInt8] {
        var message: [UInt8] = []
        withUnsafeBytes(of: UInt32(tenant.utf8.count).bigEndian) { message += $0 }
        message += tenant.utf8
        message += nonceAndTime
        return Array(Crypto.hmacSHA256(key: key, message: message).prefix(Self.tagCount))
    }
}
