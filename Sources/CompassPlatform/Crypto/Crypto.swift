import CNettle
import GlibcCompat
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The cryptography this product needs: SHA-256, HMAC-SHA256, AES-256-GCM and constant-time
/// comparison from nettle, random bytes from the kernel's CSPRNG (`randomBytes`). nettle's own
/// implementations (AES-NI, PCLMUL and SHA-NI where the processor has them); none here.
///
/// Why nettle and not OpenSSL's libcrypto: merely loading libcrypto costs a process about 0.45
/// ms and 120 page faults, and OpenSSL 3 finds a digest, an HMAC or a cipher through its
/// providers, whose first fetch in a process builds a name map from every legacy cipher and
/// digest name (3.7 million instructions). Every request of connect, settings and send-event
/// verifies a session with an HMAC. nettle works on contexts on the stack with no library-wide
/// set-up, and is linked from its archive (BENCHMARKS.md).
package enum Crypto {
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

    /// SHA-256 into 32 bytes at `digest`.
    private static func sha256(_ bytes: UnsafeRawBufferPointer, into digest: UnsafeMutablePointer<UInt8>) {
        guard let base = bytes.baseAddress else {
            var zero: UInt8 = 0
            compass_sha256(&zero, 0, digest)
            return
        }
        compass_sha256(base.assumingMemoryBound(to: UInt8.self), bytes.count, digest)
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
            b.withUnsafeBytes { y in compass_equal_in_constant_time(x.baseAddress, y.baseAddress, a.count) == 1 }
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

    /// AES-256-GCM with a 96-bit nonce and a 128-bit tag; nil only for a key or nonce of another size.
    package static func aesGCMSeal(key: [UInt8], nonce: [UInt8], plaintext: [UInt8], aad: [UInt8]) -> Sealed? {
        guard key.count == 32, nonce.count == 12 else { return nil }
        // GCM writes exactly as many bytes as it reads.
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count)
        var tag = [UInt8](repeating: 0, count: 16)
        withPointer(aad) { aadPointer, aadCount in
            withPointer(plaintext) { plaintextPointer, count in
                withMutablePointer(&ciphertext) { ciphertextPointer in
                    compass_aes_256_gcm_seal(key, nonce, aadPointer, aadCount, plaintextPointer, count, ciphertextPointer, &tag)
                }
            }
        }
        return Sealed(ciphertext: ciphertext, tag: tag)
    }

    /// nil when the key is wrong or anything (ciphertext, tag, nonce, aad) was altered.
    package static func aesGCMOpen(key: [UInt8], nonce: [UInt8], sealed: Sealed, aad: [UInt8]) -> [UInt8]? {
        guard key.count == 32, nonce.count == 12, sealed.tag.count == 16 else { return nil }
        var plaintext = [UInt8](repeating: 0, count: sealed.ciphertext.count)
        let opened = withPointer(aad) { aadPointer, aadCount in
            withPointer(sealed.ciphertext) { ciphertextPointer, count in
                withMutablePointer(&plaintext) { plaintextPointer in
                    compass_aes_256_gcm_open(key, nonce, aadPointer, aadCount, ciphertextPointer, count, sealed.tag, plaintextPointer)
                }
            }
        }
        return opened == 1 ? plaintext : nil
    }

    private static func withPointer<R>(_ bytes: [UInt8], _ body: (UnsafePointer<UInt8>, Int) -> R) -> R {
        if bytes.isEmpty {
            var zero: UInt8 = 0
            return body(&zero, 0)
        }
        return bytes.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }

    private static func withMutablePointer<R>(_ bytes: inout [UInt8], _ body: (UnsafeMutablePointer<UInt8>) -> R) -> R {
        if bytes.isEmpty {
            var zero: UInt8 = 0
            return body(&zero)
        }
        return bytes.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
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
