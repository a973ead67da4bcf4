#include <nettle/gcm.h>
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

// AES-256-GCM's context keyed, its 12-byte nonce set and `aad` authenticated.
static inline void compass_aes_256_gcm_start(struct gcm_aes256_ctx *context, const uint8_t *key, const uint8_t *nonce,
                                             const uint8_t *aad, size_t aadCount) {
    gcm_aes256_set_key(context, key);
    gcm_aes256_set_iv(context, GCM_IV_SIZE, nonce);
    gcm_aes256_update(context, aadCount, aad);
}

// AES-256-GCM with a 12-byte nonce and a 16-byte tag: `count` bytes of `plaintext` into as
// many of `ciphertext`, authenticating `aad` too. The context (the expanded key) is wiped after.
static inline void compass_aes_256_gcm_seal(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aadCount,
                                            const uint8_t *plaintext, size_t count, uint8_t *ciphertext, uint8_t *tag) {
    struct gcm_aes256_ctx context;
    compass_aes_256_gcm_start(&context, key, nonce, aad, aadCount);
    gcm_aes256_encrypt(&context, count, ciphertext, plaintext);
    gcm_aes256_digest(&context, GCM_DIGEST_SIZE, tag);
    explicit_bzero(&context, sizeof context);
}

// The other way, as nettle's manual has it: decrypt, then compare the tag computed with the one
// given in constant time. 1 when they match; otherwise 0, and the plaintext written is wiped
// (bytes that failed authentication are nobody's: the right key under another tenant's aad
// would have decrypted them).
static inline int compass_aes_256_gcm_open(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aadCount,
                                           const uint8_t *ciphertext, size_t count, const uint8_t *tag, uint8_t *plaintext) {
    struct gcm_aes256_ctx context;
    uint8_t expected[GCM_DIGEST_SIZE];
    compass_aes_256_gcm_start(&context, key, nonce, aad, aadCount);
    gcm_aes256_decrypt(&context, count, plaintext, ciphertext);
    gcm_aes256_digest(&context, GCM_DIGEST_SIZE, expected);
    explicit_bzero(&context, sizeof context);
    int verified = memeql_sec(expected, tag, GCM_DIGEST_SIZE);
    if (!verified) explicit_bzero(plaintext, count);
    return verified;
}
