import CCrypto
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct CryptoTests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
    ])
    func sha256MatchesFIPS180Vectors(input: String, digest: String) {
        #expect(Hex.encode(Crypto.sha256(input)) == digest)
        // The event path's hex digests too, one after the other.
        var out: [UInt8] = []
        for _ in 0..<2 { Array(input.utf8).withUnsafeBytes { Crypto.appendSHA256Hex(of: $0, to: &out) } }
        #expect(String(decoding: out, as: UTF8.self) == digest + digest)
    }

    @Test func sha256OfOneMillionAs() {
        let input = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(Hex.encode(Crypto.sha256(input)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        var out: [UInt8] = []
        input.withUnsafeBytes { Crypto.appendSHA256Hex(of: $0, to: &out) }
        #expect(String(decoding: out, as: UTF8.self) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func hmacMatchesRFC4231Vectors() {
        #expect(
            Hex.encode(Crypto.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(
            Hex.encode(Crypto.hmacSHA256(key: "Jefe", message: "what do ya want for nothing?"))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(
            Hex.encode(
                Crypto.hmacSHA256(
                    key: [UInt8](repeating: 0xaa, count: 131),
                    message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    /// nettle computes the product's digests and HMACs; OpenSSL's libcrypto, which did before,
    /// must agree on keys and messages of every length around SHA-256's block of 64 bytes, empty
    /// ones included.
    @Test func hmacAgreesWithLibcryptoOnEveryLength() {
        var random = SeededGenerator(state: 4231)
        for keyCount in [0, 1, 31, 32, 63, 64, 65, 127, 128, 129, 200] {
            for messageCount in [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000] {
                let key = (0..<keyCount).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                let message = (0..<messageCount).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                var expected = [UInt8](repeating: 0, count: 32)
                var length: UInt32 = 0
                // A one-byte buffer where the array is empty: HMAC takes no null key pointer.
                (key.isEmpty ? [0] : key).withUnsafeBufferPointer { keyBuffer in
                    (message.isEmpty ? [0] : message).withUnsafeBufferPointer { messageBuffer in
                        _ = HMAC(
                            EVP_sha256(), keyBuffer.baseAddress, Int32(keyCount), messageBuffer.baseAddress, messageCount, &expected,
                            &length)
                    }
                }
                #expect(length == 32)
                #expect(Crypto.hmacSHA256(key: key, message: message) == expected, "key \(keyCount) bytes, message \(messageCount)")
                var digest = [UInt8](repeating: 0, count: 32)
                (message.isEmpty ? [0] : message).withUnsafeBufferPointer { buffer in
                    _ = EVP_Digest(buffer.baseAddress, messageCount, &digest, &length, EVP_sha256(), nil)
                }
                #expect(Crypto.sha256(message) == digest, "message \(messageCount)")
            }
        }
    }

    @Test func appsecretProofMatchesMetaCheckValue() {
        #expect(
            GraphClient.appsecretProof(token: "token", appSecret: "secret")
                == "e941110e3d2bfe82621f0e3e1434730d7305d106c5f68c87165d0b27a4611a4a")
    }

    struct GCMVector: Sendable, CustomTestStringConvertible {
        var name: String, key: String, nonce: String, plaintext: String, aad: String, ciphertext: String, tag: String
        var testDescription: String { name }
    }

    // McGrew and Viega, "The Galois/Counter Mode of Operation", test cases 13, 14 and 16 (AES-256).
    static let gcmVectors = [
        GCMVector(
            name: "case 13", key: String(repeating: "00", count: 32), nonce: String(repeating: "00", count: 12),
            plaintext: "", aad: "", ciphertext: "", tag: "530f8afbc74536b9a963b4f1c4cb738b"),
        GCMVector(
            name: "case 14", key: String(repeating: "00", count: 32), nonce: String(repeating: "00", count: 12),
            plaintext: String(repeating: "00", count: 16), aad: "",
            ciphertext: "cea7403d4d606b6e074ec5d3baf39d18", tag: "d0d1c8a799996bf0265b98b5d48ab919"),
        GCMVector(
            name: "case 16",
            key: "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            nonce: "cafebabefacedbaddecaf888",
            plaintext:
                "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
            aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            ciphertext:
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            tag: "76fc6ece0f4e1768cddf8853bb2d551b"),
    ]

    @Test(arguments: gcmVectors)
    func aesGCMMatchesPublishedVectors(_ v: GCMVector) throws {
        let sealed = try #require(
            Crypto.aesGCMSeal(
                key: Hex.decode(v.key)!, nonce: Hex.decode(v.nonce)!,
                plaintext: Hex.decode(v.plaintext)!, aad: Hex.decode(v.aad)!))
        #expect(Hex.encode(sealed.ciphertext) == v.ciphertext)
        #expect(Hex.encode(sealed.tag) == v.tag)
        let opened = Crypto.aesGCMOpen(key: Hex.decode(v.key)!, nonce: Hex.decode(v.nonce)!, sealed: sealed, aad: Hex.decode(v.aad)!)
        #expect(opened.map(Hex.encode) == v.plaintext)
    }

    /// nettle seals the product's credentials and queued events; OpenSSL's libcrypto, which did
    /// before, must open what nettle seals and seal what nettle opens, for every length around
    /// AES's 16-byte block, with and without additional data.
    @Test func aesGCMAgreesWithLibcryptoOnEveryLength() throws {
        var random = SeededGenerator(state: 38)
        func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) } }
        for count in [0, 1, 15, 16, 17, 31, 32, 33, 255, 1000] {
            for aadCount in [0, 1, 16, 40] {
                let (key, nonce, plaintext, aad) = (bytes(32), bytes(12), bytes(count), bytes(aadCount))
                let sealed = try #require(Crypto.aesGCMSeal(key: key, nonce: nonce, plaintext: plaintext, aad: aad))
                var ciphertext = [UInt8](repeating: 0, count: count + 16)
                var tag = [UInt8](repeating: 0, count: 16)
                let context = try #require(EVP_CIPHER_CTX_new())
                defer { EVP_CIPHER_CTX_free(context) }
                var length: Int32 = 0
                var total: Int32 = 0
                #expect(EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nil, key, nonce) == 1)
                if aadCount > 0 { #expect(EVP_EncryptUpdate(context, nil, &length, aad, Int32(aadCount)) == 1) }
                if count > 0 {
                    #expect(EVP_EncryptUpdate(context, &ciphertext, &length, plaintext, Int32(count)) == 1)
                    total = length
                }
                ciphertext.withUnsafeMutableBufferPointer { buffer in
                    #expect(EVP_EncryptFinal_ex(context, buffer.baseAddress! + Int(total), &length) == 1)
                }
                #expect(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1)
                #expect(sealed == Crypto.Sealed(ciphertext: Array(ciphertext.prefix(count)), tag: tag), "\(count) bytes, aad \(aadCount)")
                #expect(Crypto.aesGCMOpen(key: key, nonce: nonce, sealed: sealed, aad: aad) == plaintext)
            }
        }
    }

    @Test func aesGCMRejectsAnyAlteration() throws {
        let key = Crypto.randomBytes(32)
        let nonce = Crypto.randomBytes(12)
        let sealed = try #require(Crypto.aesGCMSeal(key: key, nonce: nonce, plaintext: Array("token".utf8), aad: Array("a".utf8)))
        var flipped = sealed
        flipped.ciphertext[0] ^= 1
        #expect(Crypto.aesGCMOpen(key: key, nonce: nonce, sealed: flipped, aad: Array("a".utf8)) == nil)
        var badTag = sealed
        badTag.tag[15] ^= 0x80
        #expect(Crypto.aesGCMOpen(key: key, nonce: nonce, sealed: badTag, aad: Array("a".utf8)) == nil)
        #expect(Crypto.aesGCMOpen(key: key, nonce: nonce, sealed: sealed, aad: Array("b".utf8)) == nil)
        #expect(Crypto.aesGCMOpen(key: Crypto.randomBytes(32), nonce: nonce, sealed: sealed, aad: Array("a".utf8)) == nil)
        #expect(Crypto.aesGCMOpen(key: key, nonce: nonce, sealed: sealed, aad: Array("a".utf8)) == Array("token".utf8))
    }

    @Test func constantTimeEqualsComparesWholeValues() {
        #expect(Crypto.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(Crypto.constantTimeEquals([], []))
    }

    @Test func randomBytesOfEveryLengthFromTheKernel() {
        for count in [0, 1, 12, 32, 4096, 1 << 20] {
            let bytes = Crypto.randomBytes(count)
            #expect(bytes.count == count)
            if count >= 32 { #expect(Set(bytes).count > 8 && bytes != Crypto.randomBytes(count)) }
        }
    }

    @Test func randomBytesDiffer() {
        #expect(Crypto.randomBytes(32) != Crypto.randomBytes(32))
        #expect(Crypto.randomBytes(0).isEmpty)
    }

    @Test func credentialCipherBindsTokensToTheirTenant() throws {
        let keys = CredentialKeys(current: Crypto.randomBytes(32))
        let cipher = CredentialCipher(keys: keys, random: SecureRandom())
        let sealed = cipher.seal("EAAB-secret-token", context: IntegrationCredential.sealContext(tenantId: "a"))
        #expect(try cipher.open(sealed, context: IntegrationCredential.sealContext(tenantId: "a")) == "EAAB-secret-token")
        #expect(throws: CredentialCipher.Failure.unreadable) {
            try cipher.open(sealed, context: IntegrationCredential.sealContext(tenantId: "b"))
        }
        #expect(!JSON.encode(sealed).contains(Array("EAAB".utf8)))
    }

    /// A nonce used twice under one key breaks AES-GCM: each seal takes twelve fresh bytes from
    /// the random source, and they are the nonce stored with the record.
    @Test func eachSealTakesAFreshNonceFromTheRandomSource() throws {
        let keys = CredentialKeys(current: Crypto.randomBytes(32))
        let cipher = CredentialCipher(keys: keys, random: SecureRandom())
        let first = cipher.seal("EAAB-same-token", context: "c")
        let second = cipher.seal("EAAB-same-token", context: "c")
        #expect(first.nonce != second.nonce)
        #expect(first.ciphertext != second.ciphertext)
        struct Counting: RandomSource {
            func bytes(_ count: Int) -> [UInt8] { (0..<count).map { UInt8($0 + 1) } }
        }
        let injected = CredentialCipher(keys: keys, random: Counting()).seal("EAAB-same-token", context: "c")
        #expect(Data(base64Encoded: injected.nonce).map(Array.init) == Array(1...12))
        #expect(try cipher.open(injected, context: "c") == "EAAB-same-token")
    }

    @Test func previousKeyStillDecryptsDuringRotation() throws {
        let old = Crypto.randomBytes(32)
        let new = Crypto.randomBytes(32)
        let sealedOld = CredentialCipher(keys: CredentialKeys(current: old), random: SecureRandom()).seal("t0ken-value", context: "c")
        let rotated = CredentialCipher(keys: CredentialKeys(current: new, previous: old), random: SecureRandom())
        #expect(try rotated.open(sealedOld, context: "c") == "t0ken-value")
        #expect(rotated.needsRotation(sealedOld))
        let withoutOld = CredentialCipher(keys: CredentialKeys(current: new), random: SecureRandom())
        #expect(throws: CredentialCipher.Failure.unknownKey(sealedOld.keyId)) { try withoutOld.open(sealedOld, context: "c") }
    }
}

extension Array where Element == UInt8 {
    func contains(_ needle: [UInt8]) -> Bool {
        guard needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { self[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}
