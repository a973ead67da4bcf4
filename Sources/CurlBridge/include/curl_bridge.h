#ifndef COMPASS_CURL_BRIDGE_H
#define COMPASS_CURL_BRIDGE_H

#include <stddef.h>

/// What went wrong with a transfer; `COMPASS_HTTP_OK` when a response arrived (any status).
typedef enum {
    COMPASS_HTTP_OK = 0,
    COMPASS_HTTP_UNAVAILABLE = 1,   // libcurl could not be loaded
    COMPASS_HTTP_TIMEOUT = 2,
    COMPASS_HTTP_CONNECT = 3,       // refused, unreachable, name not resolved
    COMPASS_HTTP_TOO_LARGE = 4,     // response body over the cap
    COMPASS_HTTP_TLS = 5,
    COMPASS_HTTP_OTHER = 6
} compass_http_outcome;

typedef struct {
    const char *method;
    const char *url;
    const char *const *headers;     // "Name: value" lines
    size_t header_count;
    const unsigned char *body;      // may be NULL
    size_t body_length;
    long timeout_ms;
    long connect_timeout_ms;
    size_t max_response_bytes;
    const char *ca_file;            // NULL: the system's trust store
} compass_http_request;

typedef struct {
    compass_http_outcome outcome;
    long status;
    unsigned char *body;            // malloc'd; free with compass_http_response_free
    size_t body_length;
    char *headers;                  // raw header block, malloc'd
    size_t headers_length;
    char message[256];              // libcurl's reason when outcome != OK
} compass_http_response;

/// Performs one request synchronously. Thread-safe; reuses one connection cache per thread.
void compass_http_perform(const compass_http_request *request, compass_http_response *response);
void compass_http_response_free(compass_http_response *response);

#endif
