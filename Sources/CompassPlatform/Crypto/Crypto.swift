import CCrypto
import CNettle
import GlibcCompat
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The cryptography this product needs: digests and AES-GCM from OpenSSL's libcrypto, HMACs from
/// nettle, random bytes from the kernel's CSPRNG (`randomBytes`).
///
/// Why two libraries: OpenSSL 3 finds an HMAC through its providers, and the first such fetch in
/// a process builds its name map from every legacy cipher and digest name, 3.7 million
/// instructions, a third of connect's whole process before this; every request of connect, settings and
/// send-event verifies a session with an HMAC. nettle's HMAC works on a context on the stack
/// with no library-wide set-up (BENCHMARKS.md). Both libraries' own implementations; none here.
package enum Crypto {
    /// libcrypto set up once, for what a route uses: no configuration file read (the product
    /// configures nothing through it), no error strings loaded (about a thousand allocations at
    /// the start of every process; the product never shows OpenSSL's messages) and no clean-up
    /// at exit (the process ends; freeing every table first costs each CGI process a share).
    private static let initialized: Bool =
        OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS | OPENSSL_INIT_NO_ATEXIT), nil) == 1

    package static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeBytes { input in digest.withUnsafeMutableBufferPointer { sha256(input, into: $0.baseAddress!) } }
        return digest
    }

    package static func sha256(_ text: String) -> [UInt8] { sha256(Array(text.utf8)) }

    /// The SHA-256 of `bytes`, appended to `out` as 64 lower-case hex digits: the event path's
    /// digests, a dozen an event, without an allocation.
    package static func appendSHA256Hex(of bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        var digest: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digest) { raw in
            sha256(bytes, into: raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
            Hex.append(UnsafeRawBufferPointer(raw), to: &out)
        }
    }

    /// SHA-256 into 32 bytes at `digest`: through OpenSSL's own low-level SHA-256 on a context on
    /// the stack (`compass_sha256`; OpenSSL 3.0's EVP interface allocates and frees a context in
    /// the provider for every digest), through EVP where a libcrypto is built without it.
    private static func sha256(_ bytes: UnsafeRawBufferPointer, into digest: UnsafeMutablePointer<UInt8>) {
        _ = initialized
        guard compass_sha256(bytes.baseAddress, bytes.count, digest) != 1 else { return }
        var length: UInt32 = 0
        withPointer(Array(bytes)) { pointer, count in _ = EVP_Digest(pointer, count, digest, &length, EVP_sha256(), nil) }
    }

    /// HMAC-SHA256 through nettle (`compass_hmac_sha256`, which wipes its context after use).
    package static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: 32)
        withPointer(key) { keyPointer, keyCount in
            withPointer(message) { messagePointer, messageCount in
                compass_hmac_sha256(keyPointer, keyCount, messagePointer, messageCount, &mac)
            }
        }
        return mac
    }

    package static func hmacSHA256(key: String, message: String) -> [UInt8] {
        hmacSHA256(key: Array(key.utf8), message: Array(message.utf8))
    }

    /// Equal length and equal bytes, in time that does not depend on where they differ.
    package static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        #if DEBUG
            witness?.record()
        #endif
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 }
        }
    }

    package static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return bytes }
        // The kernel's CSPRNG (getrandom(2), which blocks only until the pool is first seeded):
        // what OpenSSL's DRBG seeds itself from, without setting the DRBG up in every process.
        var filled = 0
        while filled < count {
            let got = bytes.withUnsafeMutableBytes { getrandom($0.baseAddress! + filled, count - filled, 0) }
            if got > 0 {
                filled += got
            } else if got < 0 && errno != EINTR {
                // Only without any source of entropy; nothing safe can go on then.
                fatalError("getrandom failed")
            }
        }
        return bytes
    }

    package struct Sealed: Equatable {
        package var ciphertext: [UInt8]
        package var tag: [UInt8]
    }

    /// AES-256-GCM with a 96-bit nonce and a 128-bit tag.
    package static func aesGCMSeal(key: [UInt8], nonce: [UInt8], plaintext: [UInt8], aad: [UInt8]) -> Sealed? {
        _ = initialized
        guard key.count == 32, nonce.count == 12, let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + 16)
        var tag = [UInt8](repeating: 0, count: 16)
        var length: Int32 = 0
        var total = 0
        guard EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nil, nil, nil) == 1,
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_IVLEN, 12, nil) == 1,
            EVP_EncryptInit_ex(context, nil, nil, key, nonce) == 1
        else { return nil }
        if !aad.isEmpty {
            guard EVP_EncryptUpdate(context, nil, &length, aad, Int32(aad.count)) == 1 else { return nil }
        }
        if !plaintext.isEmpty {
            guard EVP_EncryptUpdate(context, &ciphertext, &length, plaintext, Int32(plaintext.count)) == 1 else { return nil }
            total = Int(length)
        }
        let finished = ciphertext.withUnsafeMutableBufferPointer { buffer in
            EVP_EncryptFinal_ex(context, buffer.baseAddress! + total, &length)
        }
        guard finished == 1 else { return nil }
        total += Int(length)
        guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1 else { return nil }
        return Sealed(ciphertext: Array(ciphertext.prefix(total)), tag: tag)
    }

    /// nil when the key is wrong or anything (ciphertext, tag, nonce, aad) was altered.
    package static func aesGCMOpen(key: [UInt8], nonce: [UInt8], sealed: Sealed, aad: [UInt8]) -> [UInt8]? {
        _ = initialized
        guard key.count == 32, nonce.count == 12, sealed.tag.count == 16,
            let context = EVP_CIPHER_CTX_new()
        else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        var plaintext = [UInt8](repeating: 0, count: sealed.ciphertext.count + 16)
        var length: Int32 = 0
        var total = 0
        var tag = sealed.tag
        guard EVP_DecryptInit_ex(context, EVP_aes_256_gcm(), nil, nil, nil) == 1,
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_IVLEN, 12, nil) == 1,
            EVP_DecryptInit_ex(context, nil, nil, key, nonce) == 1
        else { return nil }
        if !aad.isEmpty {
            guard EVP_DecryptUpdate(context, nil, &length, aad, Int32(aad.count)) == 1 else { return nil }
        }
        if !sealed.ciphertext.isEmpty {
            guard EVP_DecryptUpdate(context, &plaintext, &length, sealed.ciphertext, Int32(sealed.ciphertext.count)) == 1 else {
                return nil
            }
            total = Int(length)
        }
        guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1 else { return nil }
        let verified = plaintext.withUnsafeMutableBufferPointer { buffer in
            EVP_DecryptFinal_ex(context, buffer.baseAddress! + total, &length)
        }
        guard verified == 1 else { return nil }
        total += Int(length)
        return Array(plaintext.prefix(total))
    }

    private static func withPointer<R>(_ bytes: [UInt8], _ body: (UnsafePointer<UInt8>, Int) -> R) -> R {
        if bytes.isEmpty {
            var zero: UInt8 = 0
            return body(&zero, 0)
        }
        return bytes.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }
}

#if DEBUG
    /// Debug builds only: a test binds `Crypto.witness` around a secret check to see that the check
    /// compares through `constantTimeEquals` (a task-local value: tests running at once do not mix).
    package final class ComparisonWitness: Sendable {
        private let count = Mutex(0)
        package init() {}
        package var comparisons: Int { count.withLock { $0 } }
        func record() { count.withLock { $0 += 1 } }
    }

    extension Crypto {
        @TaskLocal package static var witness: ComparisonWitness?
    }
#endif
