// OpenSSL's libcrypto, loaded on first use, for AES-256-GCM: the credential cipher is its only
// user. Loading it costs a process about 0.45 ms and 120 page faults (its relocations and
// set-up), which connect, settings and dry runs no longer pay (BENCHMARKS.md).
#include "crypto_bridge.h"

#include <dlfcn.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

static struct {
    int loaded;
    __typeof__(&OPENSSL_init_crypto) init_crypto;
    __typeof__(&EVP_CIPHER_CTX_new) ctx_new;
    __typeof__(&EVP_CIPHER_CTX_free) ctx_free;
    __typeof__(&EVP_CIPHER_CTX_ctrl) ctx_ctrl;
    __typeof__(&EVP_aes_256_gcm) aes_256_gcm;
    __typeof__(&EVP_EncryptInit_ex) encrypt_init;
    __typeof__(&EVP_EncryptUpdate) encrypt_update;
    __typeof__(&EVP_EncryptFinal_ex) encrypt_final;
    __typeof__(&EVP_DecryptInit_ex) decrypt_init;
    __typeof__(&EVP_DecryptUpdate) decrypt_update;
    __typeof__(&EVP_DecryptFinal_ex) decrypt_final;
} api;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load_crypto(void) {
    void *lib = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return;
    api.init_crypto = (__typeof__(api.init_crypto))dlsym(lib, "OPENSSL_init_crypto");
    api.ctx_new = (__typeof__(api.ctx_new))dlsym(lib, "EVP_CIPHER_CTX_new");
    api.ctx_free = (__typeof__(api.ctx_free))dlsym(lib, "EVP_CIPHER_CTX_free");
    api.ctx_ctrl = (__typeof__(api.ctx_ctrl))dlsym(lib, "EVP_CIPHER_CTX_ctrl");
    api.aes_256_gcm = (__typeof__(api.aes_256_gcm))dlsym(lib, "EVP_aes_256_gcm");
    api.encrypt_init = (__typeof__(api.encrypt_init))dlsym(lib, "EVP_EncryptInit_ex");
    api.encrypt_update = (__typeof__(api.encrypt_update))dlsym(lib, "EVP_EncryptUpdate");
    api.encrypt_final = (__typeof__(api.encrypt_final))dlsym(lib, "EVP_EncryptFinal_ex");
    api.decrypt_init = (__typeof__(api.decrypt_init))dlsym(lib, "EVP_DecryptInit_ex");
    api.decrypt_update = (__typeof__(api.decrypt_update))dlsym(lib, "EVP_DecryptUpdate");
    api.decrypt_final = (__typeof__(api.decrypt_final))dlsym(lib, "EVP_DecryptFinal_ex");
    if (!api.init_crypto || !api.ctx_new || !api.ctx_free || !api.ctx_ctrl || !api.aes_256_gcm || !api.encrypt_init ||
        !api.encrypt_update || !api.encrypt_final || !api.decrypt_init || !api.decrypt_update || !api.decrypt_final) {
        return;
    }
    // No configuration file read (the product configures nothing through it), no error strings
    // loaded (the product never shows OpenSSL's messages), no clean-up at exit (the process ends).
    if (api.init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS | OPENSSL_INIT_NO_ATEXIT, NULL) != 1) {
        return;
    }
    api.loaded = 1;
}

static int ready(size_t aad_count, size_t count) {
    pthread_once(&load_once, load_crypto);
    return api.loaded && aad_count <= INT_MAX && count <= INT_MAX;
}

int compass_crypto_is_loaded(void) { return api.loaded; }

int compass_aes_256_gcm_seal(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_count,
                             const uint8_t *plaintext, size_t count, uint8_t *ciphertext, uint8_t *tag) {
    if (!ready(aad_count, count)) return 0;
    EVP_CIPHER_CTX *context = api.ctx_new();
    if (!context) return 0;
    int length = 0;
    int ok = api.encrypt_init(context, api.aes_256_gcm(), NULL, NULL, NULL) == 1 &&
             api.ctx_ctrl(context, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
             api.encrypt_init(context, NULL, NULL, key, nonce) == 1 &&
             (aad_count == 0 || api.encrypt_update(context, NULL, &length, aad, (int)aad_count) == 1) &&
             (count == 0 || api.encrypt_update(context, ciphertext, &length, plaintext, (int)count) == 1) &&
             api.encrypt_final(context, ciphertext + (count == 0 ? 0 : length), &length) == 1 &&
             api.ctx_ctrl(context, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
    api.ctx_free(context);
    return ok;
}

int compass_aes_256_gcm_open(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_count,
                             const uint8_t *ciphertext, size_t count, const uint8_t *tag, uint8_t *plaintext) {
    if (!ready(aad_count, count)) return 0;
    EVP_CIPHER_CTX *context = api.ctx_new();
    if (!context) return 0;
    int length = 0;
    uint8_t expected[16];
    for (int i = 0; i < 16; i++) expected[i] = tag[i];
    int ok = api.decrypt_init(context, api.aes_256_gcm(), NULL, NULL, NULL) == 1 &&
             api.ctx_ctrl(context, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
             api.decrypt_init(context, NULL, NULL, key, nonce) == 1 &&
             (aad_count == 0 || api.decrypt_update(context, NULL, &length, aad, (int)aad_count) == 1) &&
             (count == 0 || api.decrypt_update(context, plaintext, &length, ciphertext, (int)count) == 1) &&
             api.ctx_ctrl(context, EVP_CTRL_GCM_SET_TAG, 16, expected) == 1 &&
             api.decrypt_final(context, plaintext + (count == 0 ? 0 : length), &length) == 1;
    api.ctx_free(context);
    // Bytes that failed authentication (the right key, another tenant's context) are nobody's.
    if (!ok) explicit_bzero(plaintext, count);
    return ok;
}
