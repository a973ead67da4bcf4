#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <string.h>

// SHA-256 of `count` bytes into `digest` (32 bytes): a context on the stack, no library-wide
// set-up (nettle picks its SHA-NI code on the first call).
static inline void compass_sha256(const uint8_t *data, size_t count, uint8_t *digest) {
    struct sha256_ctx context;
    sha256_init(&context);
    sha256_update(&context, count, data);
    sha256_digest(&context, SHA256_DIGEST_SIZE, digest);
}

// HMAC-SHA256 of `count` bytes with a key of `keyCount` bytes into `mac` (32 bytes). The
// context, which holds the key's derived pads, is wiped before returning.
static inline void compass_hmac_sha256(const uint8_t *key, size_t keyCount, const uint8_t *data, size_t count, uint8_t *mac) {
    struct hmac_sha256_ctx context;
    hmac_sha256_set_key(&context, keyCount, key);
    hmac_sha256_update(&context, count, data);
    hmac_sha256_digest(&context, SHA256_DIGEST_SIZE, mac);
    explicit_bzero(&context, sizeof context);
}

// 1 when the `count` bytes at `a` and `b` are equal, in time that depends only on `count`.
static inline int compass_equal_in_constant_time(const void *a, const void *b, size_t count) {
    return memeql_sec(a, b, count);
}
