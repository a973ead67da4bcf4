// compass_sha256 below calls functions OpenSSL 3 marks deprecated (they stay in its library):
// the marks are silenced for this header only.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/sha.h>

// SHA-256 of `count` bytes into `digest` (32 bytes) through OpenSSL's own low-level SHA-256,
// which works on a context on the stack. OpenSSL 3.0's EVP interface allocates and frees a
// context inside the provider for every digest (a dozen an event on the event path). Returns 0
// where the library is built without these functions; the caller then digests through EVP.
static inline int compass_sha256(const void *data, size_t count, unsigned char *digest) {
#ifndef OPENSSL_NO_DEPRECATED_3_0
    SHA256_CTX context;
    return SHA256_Init(&context) == 1 && SHA256_Update(&context, data, count) == 1 && SHA256_Final(digest, &context) == 1;
#else
    (void)data; (void)count; (void)digest;
    return 0;
#endif
}
