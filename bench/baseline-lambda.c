// The baseline custom runtime: a C program that loops over the Lambda Runtime API with libcurl
// (one handle, so one kept-alive connection, as our bridge keeps one per thread) and answers
// every invocation with the same fixed redirect, doing no work of its own.
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char request_id[128];

static size_t header(char *line, size_t size, size_t count, void *unused) {
    size_t length = size * count;
    (void)unused;
    if (length > 30 && strncasecmp(line, "Lambda-Runtime-Aws-Request-Id:", 30) == 0) {
        size_t start = 30, end = length;
        while (start < end && line[start] == ' ') start++;
        while (end > start && (line[end - 1] == '\r' || line[end - 1] == '\n')) end--;
        if (end - start < sizeof request_id) { memcpy(request_id, line + start, end - start); request_id[end - start] = 0; }
    }
    return length;
}

static size_t discard(char *data, size_t size, size_t count, void *unused) { (void)data; (void)unused; return size * count; }

int main(void) {
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    if (!api) return 1;
    const char *answer = "{\"statusCode\":302,\"headers\":{\"Location\":\"https://www.facebook.com/v26.0/dialog/oauth\"},\"body\":\"\",\"isBase64Encoded\":false}";
    CURL *curl = curl_easy_init();
    char next[256], url[512];
    snprintf(next, sizeof next, "http://%s/2018-06-01/runtime/invocation/next", api);
    for (;;) {
        request_id[0] = 0;
        curl_easy_reset(curl);
        curl_easy_setopt(curl, CURLOPT_URL, next);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
        if (curl_easy_perform(curl) != CURLE_OK || !request_id[0]) return 1;
        snprintf(url, sizeof url, "http://%s/2018-06-01/runtime/invocation/%s/response", api, request_id);
        curl_easy_reset(curl);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, answer);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
        if (curl_easy_perform(curl) != CURLE_OK) return 1;
    }
}
