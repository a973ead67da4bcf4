#define _GNU_SOURCE
// The Lambda Runtime API (2018-06-01) for the benchmark: hands out COUNT invocations of one
// event, takes their responses, and prints the invocations per second from the first
// `invocation/next` to the last response, and how many answers carried EXPECT (e.g. a status).
//   lambda-emulator PORT COUNT EVENT_FILE EXPECT
// One thread, keep-alive connections served with poll(): the runtime under test asks one thing
// at a time, as a Lambda runtime does.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 4
#define BUFFER (8 << 20)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static long long epoch_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void send_all(int fd, const char *data, size_t length) {
    while (length > 0) {
        ssize_t sent = write(fd, data, length);
        if (sent <= 0) return;
        data += sent;
        length -= (size_t)sent;
    }
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: lambda-emulator PORT COUNT EVENT_FILE EXPECT\n"); return 2; }
    int port = atoi(argv[1]);
    long count = atol(argv[2]);
    const char *expect = argv[4];
    FILE *file = fopen(argv[3], "rb");
    if (!file) { perror("event"); return 2; }
    static char event[BUFFER];
    size_t event_length = fread(event, 1, sizeof event, file);
    fclose(file);

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (event_length == sizeof event) { fprintf(stderr, "lambda-emulator: the event is over %d bytes\n", BUFFER); return 2; }
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 16) != 0) { perror("listen"); return 2; }

    struct pollfd fds[MAX_CLIENTS + 1] = {{.fd = listener, .events = POLLIN}};
    static char buffers[MAX_CLIENTS][BUFFER];
    size_t filled[MAX_CLIENTS] = {0};
    int clients = 0;
    long handed = 0, answered = 0, matching = 0;
    double started = 0;
    while (answered < count) {
        if (poll(fds, clients + 1, 30000) <= 0) { fprintf(stderr, "lambda-emulator: no request for 30 s\n"); return 1; }
        if ((fds[0].revents & POLLIN) && clients < MAX_CLIENTS) {
            int client = accept(listener, NULL, NULL);
            if (client >= 0) {
                setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
                fds[clients + 1] = (struct pollfd){.fd = client, .events = POLLIN};
                filled[clients] = 0;
                clients++;
            }
        }
        for (int i = 0; i < clients; i++) {
            if (!(fds[i + 1].revents & (POLLIN | POLLHUP))) continue;
            ssize_t got = read(fds[i + 1].fd, buffers[i] + filled[i], BUFFER - 1 - filled[i]);
            if (got <= 0) {
                close(fds[i + 1].fd);
                fds[i + 1] = fds[clients];
                memcpy(buffers[i], buffers[clients - 1], filled[clients - 1]);
                filled[i] = filled[clients - 1];
                clients--;
                i--;
                continue;
            }
            filled[i] += (size_t)got;
            buffers[i][filled[i]] = 0;
            for (;;) {
                char *end = strstr(buffers[i], "\r\n\r\n");
                if (!end) break;
                size_t head = (size_t)(end - buffers[i]) + 4, body = 0;
                char *length = strcasestr(buffers[i], "\r\ncontent-length:");
                if (length && length < end) body = (size_t)atol(length + 17);
                if (filled[i] < head + body) break;
                char response[512];
                if (strncmp(buffers[i], "GET /2018-06-01/runtime/invocation/next", 39) == 0) {
                    if (handed == 0) started = now();
                    handed++;
                    int n = snprintf(response, sizeof response,
                                     "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: request-%ld\r\n"
                                     "Lambda-Runtime-Deadline-Ms: %lld\r\nLambda-Runtime-Trace-Id: Root=1-0-0;Sampled=0\r\n"
                                     "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:eu-west-1:000000000000:function:bench\r\n"
                                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                                     handed, epoch_ms() + 30000, event_length);
                    send_all(fds[i + 1].fd, response, (size_t)n);
                    send_all(fds[i + 1].fd, event, event_length);
                } else {
                    char saved = buffers[i][head + body];
                    buffers[i][head + body] = 0;
                    if (strstr(buffers[i] + head, expect)) matching++;
                    buffers[i][head + body] = saved;
                    if (strstr(buffers[i], "/response ")) answered++;
                    const char *accepted = "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n";
                    send_all(fds[i + 1].fd, accepted, strlen(accepted));
                }
                memmove(buffers[i], buffers[i] + head + body, filled[i] - head - body);
                filled[i] -= head + body;
                buffers[i][filled[i]] = 0;
            }
        }
    }
    double elapsed = now() - started;
    printf("%ld %ld %.0f\n", answered, matching, answered / elapsed);
    return 0;
}
