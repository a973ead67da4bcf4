// libcurl, loaded on first use. Handlers that never call out (connect with the file store,
// settings without a Meta look-up) never map libcurl and its ~30 dependent libraries.
#include "curl_bridge.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef CURLcode (*global_init_fn)(long);
typedef CURL *(*easy_init_fn)(void);
typedef CURLcode (*easy_setopt_fn)(CURL *, CURLoption, ...);
typedef CURLcode (*easy_perform_fn)(CURL *);
typedef CURLcode (*easy_getinfo_fn)(CURL *, CURLINFO, ...);
typedef void (*easy_reset_fn)(CURL *);
typedef struct curl_slist *(*slist_append_fn)(struct curl_slist *, const char *);
typedef void (*slist_free_fn)(struct curl_slist *);
typedef const char *(*easy_strerror_fn)(CURLcode);

static struct {
    int loaded;
    global_init_fn global_init;
    easy_init_fn easy_init;
    easy_setopt_fn easy_setopt;
    easy_perform_fn easy_perform;
    easy_getinfo_fn easy_getinfo;
    easy_reset_fn easy_reset;
    slist_append_fn slist_append;
    slist_free_fn slist_free_all;
    easy_strerror_fn easy_strerror;
} api;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static __thread CURL *thread_handle;

static void load_curl(void) {
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("libcurl.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return;
    api.global_init = (global_init_fn)dlsym(lib, "curl_global_init");
    api.easy_init = (easy_init_fn)dlsym(lib, "curl_easy_init");
    api.easy_setopt = (easy_setopt_fn)dlsym(lib, "curl_easy_setopt");
    api.easy_perform = (easy_perform_fn)dlsym(lib, "curl_easy_perform");
    api.easy_getinfo = (easy_getinfo_fn)dlsym(lib, "curl_easy_getinfo");
    api.easy_reset = (easy_reset_fn)dlsym(lib, "curl_easy_reset");
    api.slist_append = (slist_append_fn)dlsym(lib, "curl_slist_append");
    api.slist_free_all = (slist_free_fn)dlsym(lib, "curl_slist_free_all");
    api.easy_strerror = (easy_strerror_fn)dlsym(lib, "curl_easy_strerror");
    if (!api.global_init || !api.easy_init || !api.easy_setopt || !api.easy_perform ||
        !api.easy_getinfo || !api.easy_reset || !api.slist_append || !api.slist_free_all ||
        !api.easy_strerror) {
        return;
    }
    if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return;
    api.loaded = 1;
}

typedef struct {
    unsigned char *data;
    size_t length;
    size_t capacity;
    size_t limit;
    int overflowed;
} buffer;

static int buffer_append(buffer *b, const void *bytes, size_t n) {
    if (b->length + n > b->limit) {
        b->overflowed = 1;
        return 0;
    }
    if (b->length + n > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 4096;
        while (capacity < b->length + n) capacity *= 2;
        if (capacity > b->limit) capacity = b->limit;
        unsigned char *grown = realloc(b->data, capacity);
        if (!grown) return 0;
        b->data = grown;
        b->capacity = capacity;
    }
    memcpy(b->data + b->length, bytes, n);
    b->length += n;
    return 1;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
    size_t n = size * nmemb;
    return buffer_append((buffer *)userdata, ptr, n) ? n : 0;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata) {
    size_t n = size * nmemb;
    buffer *b = (buffer *)userdata;
    // A new status line (after a 100 Continue, say) starts a new header block.
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) b->length = 0;
    return buffer_append(b, ptr, n) ? n : 0;
}

static void fail(compass_http_response *response, compass_http_outcome outcome, const char *message) {
    response->outcome = outcome;
    snprintf(response->message, sizeof response->message, "%s", message);
}

void compass_http_perform(const compass_http_request *request, compass_http_response *response) {
    memset(response, 0, sizeof *response);
    pthread_once(&load_once, load_curl);
    if (!api.loaded) {
        fail(response, COMPASS_HTTP_UNAVAILABLE, "libcurl could not be loaded");
        return;
    }
    if (!thread_handle) thread_handle = api.easy_init();
    CURL *curl = thread_handle;
    if (!curl) {
        fail(response, COMPASS_HTTP_UNAVAILABLE, "libcurl handle could not be created");
        return;
    }
    api.easy_reset(curl);  // keeps the connection cache, drops every option

    buffer body = {0};
    body.limit = request->max_response_bytes;
    buffer headers = {0};
    headers.limit = 64 * 1024;

    struct curl_slist *list = NULL;
    for (size_t i = 0; i < request->header_count; i++) {
        list = api.slist_append(list, request->headers[i]);
    }
    list = api.slist_append(list, "Expect:");

    api.easy_setopt(curl, CURLOPT_URL, request->url);
    api.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    api.easy_setopt(curl, CURLOPT_TIMEOUT_MS, request->timeout_ms);
    api.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, request->connect_timeout_ms);
    api.easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    api.easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    // Never a proxy from the environment: in a CGI process HTTP_PROXY can come from a request.
    api.easy_setopt(curl, CURLOPT_PROXY, "");
    api.easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    api.easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    api.easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    api.easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    api.easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    api.easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    api.easy_setopt(curl, CURLOPT_HEADERDATA, &headers);
    if (request->ca_file) api.easy_setopt(curl, CURLOPT_CAINFO, request->ca_file);

    const char *method = request->method ? request->method : "GET";
    if (strcmp(method, "GET") == 0) {
        api.easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        api.easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else {
        api.easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        if (request->body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
            api.easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request->body_length);
            api.easy_setopt(curl, CURLOPT_POSTFIELDS, request->body ? (const char *)request->body : "");
        }
    }

    CURLcode code = api.easy_perform(curl);
    api.slist_free_all(list);

    if (code == CURLE_OK) {
        long status = 0;
        api.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        response->outcome = COMPASS_HTTP_OK;
        response->status = status;
        response->body = body.data;
        response->body_length = body.length;
        response->headers = (char *)headers.data;
        response->headers_length = headers.length;
        return;
    }
    free(headers.data);
    free(body.data);
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        fail(response, COMPASS_HTTP_TIMEOUT, api.easy_strerror(code));
        break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        fail(response, COMPASS_HTTP_CONNECT, api.easy_strerror(code));
        break;
    case CURLE_WRITE_ERROR:
        if (body.overflowed) fail(response, COMPASS_HTTP_TOO_LARGE, "response body over the size limit");
        else fail(response, COMPASS_HTTP_OTHER, api.easy_strerror(code));
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
        fail(response, COMPASS_HTTP_TLS, api.easy_strerror(code));
        break;
    default:
        fail(response, COMPASS_HTTP_OTHER, api.easy_strerror(code));
    }
}

void compass_http_response_free(compass_http_response *response) {
    free(response->body);
    free(response->headers);
    response->body = NULL;
    response->headers = NULL;
}
