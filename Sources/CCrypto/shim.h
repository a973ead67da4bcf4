// OpenSSL's libcrypto for the tests only, which check nettle's digests and MACs against it.
// The product loads libcrypto itself, on first use (CryptoBridge).
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
