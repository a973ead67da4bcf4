/// The AES-256-GCM keys for tokens at rest: the current key encrypts; the previous one (during
/// a rotation) still decrypts. A key id, derived from the key, tells which one sealed a record.
package struct CredentialKeys: Sendable {
    package struct Key: Sendable {
        package var id: String
        package var bytes: [UInt8]
    }

    package var current: Key
    package var previous: Key?

    package init(current: String, previous: String?) throws(ConfigError) {
        self.current = try Self.parse(current, variable: "CREDENTIALS_KEY")
        self.previous = try previous.map { raw throws(ConfigError) in try Self.parse(raw, variable: "CREDENTIALS_KEY_PREVIOUS") }
    }

    package init(current: [UInt8], previous: [UInt8]? = nil) {
        self.current = Key(id: Self.keyId(current), bytes: current)
        self.previous = previous.map { Key(id: Self.keyId($0), bytes: $0) }
    }

    private static func parse(_ raw: String, variable: String) throws(ConfigError) -> Key {
        guard let data = Data(base64Encoded: raw), data.count == 32 else {
            throw ConfigError(variable: variable, problem: "must be base64 of exactly 32 bytes")
        }
        return Key(id: keyId(Array(data)), bytes: Array(data))
    }

    /// Not secret: 8 hex characters of a domain-separated hash of the key.
    package static func keyId(_ key: [UInt8]) -> String {
        String(Hex.encode(Crypto.sha256(Array("compass-credentials-key-id:".utf8) + key)).prefix(8))
    }

    package func key(withId id: String) -> Key? {
        if current.id == id { return current }
        if let previous, previous.id == id { return previous }
        return nil
    }
}

/// A secret sealed for storage. The associated data binds it to its owner and purpose, so a
/// record copied onto another tenant's key does not decrypt.
package struct SealedSecret: Codable, Sendable, Equatable {
    package var keyId: String
    package var nonce: String
    package var ciphertext: String
    package var tag: String
}

package struct CredentialCipher: Sendable {
    package var keys: CredentialKeys
    package var random: any RandomSource

    package enum Failure: Error, Equatable {
        case unknownKey(String)
        case unreadable
    }

    package func seal(_ plaintext: String, context: String) -> SealedSecret {
        let nonce = random.bytes(12)
        // Sealing only fails on a wrong key or nonce size, both fixed above.
        let sealed = Crypto.aesGCMSeal(
            key: keys.current.bytes, nonce: nonce,
            plaintext: Array(plaintext.utf8), aad: Array(context.utf8))!
        return SealedSecret(
            keyId: keys.current.id, nonce: Data(nonce).base64EncodedString(),
            ciphertext: Data(sealed.ciphertext).base64EncodedString(),
            tag: Data(sealed.tag).base64EncodedString())
    }

    package func open(_ secret: SealedSecret, context: String) throws(Failure) -> String {
        guard let key = keys.key(withId: secret.keyId) else { throw .unknownKey(secret.keyId) }
        guard let nonce = Data(base64Encoded: secret.nonce), let ciphertext = Data(base64Encoded: secret.ciphertext),
            let tag = Data(base64Encoded: secret.tag),
            let plaintext = Crypto.aesGCMOpen(
                key: key.bytes, nonce: Array(nonce),
                sealed: .init(ciphertext: Array(ciphertext), tag: Array(tag)),
                aad: Array(context.utf8)),
            let text = String(validating: plaintext, as: UTF8.self)
        else {
            throw .unreadable
        }
        return text
    }

    /// True when the record was sealed under a key other than the current one.
    package func needsRotation(_ secret: SealedSecret) -> Bool { secret.keyId != keys.current.id }

    package init(keys: CredentialKeys, random: any RandomSource) {
        self.keys = keys
        self.random = random
    }
}
