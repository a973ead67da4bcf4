// OpenSSL's libcrypto for the unit tests only, which hold nettle's digests, MACs and AES-GCM to
// its answers. The product does not link it.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
