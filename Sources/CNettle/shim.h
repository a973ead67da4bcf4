#include <nettle/hmac.h>
#include <string.h>

// HMAC-SHA256 of `count` bytes with a key of `keyCount` bytes into `mac` (32 bytes), through
// nettle: a context on the stack, no library-wide set-up. The context, which holds the key's
// derived pads, is wiped before returning.
static inline void compass_hmac_sha256(const uint8_t *key, size_t keyCount, const uint8_t *data, size_t count, uint8_t *mac) {
    struct hmac_sha256_ctx context;
    hmac_sha256_set_key(&context, keyCount, key);
    hmac_sha256_update(&context, count, data);
    hmac_sha256_digest(&context, SHA256_DIGEST_SIZE, mac);
    explicit_bzero(&context, sizeof context);
}
