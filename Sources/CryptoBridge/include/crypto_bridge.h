#ifndef COMPASS_CRYPTO_BRIDGE_H
#define COMPASS_CRYPTO_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

// AES-256-GCM through OpenSSL's libcrypto, which is loaded on the first call: a process that
// never seals or opens a credential (connect, settings, a dry run) never maps it. Nonces are 12
// bytes and tags 16. Each returns 1 on success and 0 otherwise: libcrypto missing, a length over
// INT_MAX, a failure inside libcrypto, or (open) a tag that does not verify.
int compass_aes_256_gcm_seal(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_count,
                             const uint8_t *plaintext, size_t count, uint8_t *ciphertext, uint8_t *tag);
int compass_aes_256_gcm_open(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_count,
                             const uint8_t *ciphertext, size_t count, const uint8_t *tag, uint8_t *plaintext);

// 1 once libcrypto is loaded in this process.
int compass_crypto_is_loaded(void);

#endif
