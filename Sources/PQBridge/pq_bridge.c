#include "pq_bridge.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

// The few libpq functions used, by the signatures libpq-fe.h gives them (enums as int).
static struct {
    void *(*connect_start)(const char *);
    int (*connect_poll)(void *);
    int (*status)(const void *);
    char *(*error_message)(const void *);
    void (*finish)(void *);
    int (*socket)(const void *);
    int (*set_nonblocking)(void *, int);
    void *(*set_notice_processor)(void *, void (*)(void *, const char *), void *);
    int (*send_query_params)(void *, const char *, int, const unsigned int *, const char *const *, const int *, const int *, int);
    int (*flush)(void *);
    int (*consume_input)(void *);
    int (*is_busy)(void *);
    void *(*get_result)(void *);
    int (*result_status)(const void *);
    char *(*result_error_field)(const void *, int);
    int (*ntuples)(const void *);
    int (*nfields)(const void *);
    int (*getisnull)(const void *, int, int);
    int (*getlength)(const void *, int, int);
    char *(*getvalue)(const void *, int, int);
    void (*clear)(void *);
    int (*transaction_status)(const void *);
    int (*ssl_in_use)(const void *);
    char *(*host)(const void *);
    int loaded;
} pq;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    void *lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return;
    pq.connect_start = dlsym(lib, "PQconnectStart");
    pq.connect_poll = dlsym(lib, "PQconnectPoll");
    pq.status = dlsym(lib, "PQstatus");
    pq.error_message = dlsym(lib, "PQerrorMessage");
    pq.finish = dlsym(lib, "PQfinish");
    pq.socket = dlsym(lib, "PQsocket");
    pq.set_nonblocking = dlsym(lib, "PQsetnonblocking");
    pq.set_notice_processor = dlsym(lib, "PQsetNoticeProcessor");
    pq.send_query_params = dlsym(lib, "PQsendQueryParams");
    pq.flush = dlsym(lib, "PQflush");
    pq.consume_input = dlsym(lib, "PQconsumeInput");
    pq.is_busy = dlsym(lib, "PQisBusy");
    pq.get_result = dlsym(lib, "PQgetResult");
    pq.result_status = dlsym(lib, "PQresultStatus");
    pq.result_error_field = dlsym(lib, "PQresultErrorField");
    pq.ntuples = dlsym(lib, "PQntuples");
    pq.nfields = dlsym(lib, "PQnfields");
    pq.getisnull = dlsym(lib, "PQgetisnull");
    pq.getlength = dlsym(lib, "PQgetlength");
    pq.getvalue = dlsym(lib, "PQgetvalue");
    pq.clear = dlsym(lib, "PQclear");
    pq.transaction_status = dlsym(lib, "PQtransactionStatus");
    pq.ssl_in_use = dlsym(lib, "PQsslInUse");
    pq.host = dlsym(lib, "PQhost");
    pq.loaded = pq.connect_start && pq.connect_poll && pq.status && pq.error_message && pq.finish && pq.socket &&
                pq.set_nonblocking && pq.set_notice_processor && pq.send_query_params && pq.flush && pq.consume_input && pq.is_busy &&
                pq.get_result && pq.result_status && pq.result_error_field && pq.ntuples && pq.nfields &&
                pq.getisnull && pq.getlength && pq.getvalue && pq.clear && pq.transaction_status && pq.ssl_in_use && pq.host;
}

int compass_pq_load(void) {
    pthread_once(&once, load);
    return pq.loaded;
}

static int64_t now_ms(void) {
    struct timespec spec;
    clock_gettime(CLOCK_MONOTONIC, &spec);
    return (int64_t)spec.tv_sec * 1000 + spec.tv_nsec / 1000000;
}

// Waits until the connection's socket is ready for `events` or `end` (monotonic ms) passes:
// 1 ready, 0 the time is up, -1 the socket failed.
static int wait_for(void *conn, short events, int64_t end) {
    int fd = pq.socket(conn);
    if (fd < 0) return -1;
    for (;;) {
        int64_t left = end - now_ms();
        if (left <= 0) return 0;
        struct pollfd entry = {.fd = fd, .events = events};
        int ready = poll(&entry, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (ready > 0) return 1;
        if (ready == 0) return 0;
        if (errno != EINTR) return -1;
    }
}

// The server's notices (a migration's "already exists, skipping") are not errors, and the
// process's standard error is its log of JSON lines: they are dropped, not printed there.
static void ignore_notice(void *argument, const char *message) { (void)argument; (void)message; }

void *compass_pq_connect(const char *conninfo, int timeout_ms, int *timed_out) {
    *timed_out = 0;
    if (!compass_pq_load()) return NULL;
    int64_t end = now_ms() + timeout_ms;
    void *conn = pq.connect_start(conninfo);
    if (!conn) return NULL;
    pq.set_notice_processor(conn, ignore_notice, NULL);
    int state = 2; // PGRES_POLLING_WRITING: the first wait is for the socket to be writable
    while (pq.status(conn) != 1 /* CONNECTION_BAD */) {
        if (state == 1 /* PGRES_POLLING_READING */ || state == 2 /* PGRES_POLLING_WRITING */) {
            int ready = wait_for(conn, state == 2 ? POLLOUT : POLLIN, end);
            if (ready == 0) { *timed_out = 1; break; }
            if (ready < 0) break;
        }
        state = pq.connect_poll(conn);
        if (state == 0 /* PGRES_POLLING_FAILED */) break;
        if (state == 3 /* PGRES_POLLING_OK */) {
            if (pq.set_nonblocking(conn, 1) == 0) return conn;
            // A connection that would block cannot be bounded: none.
            pq.finish(conn);
            return NULL;
        }
    }
    return conn; // not connected: the caller reads the error and finishes it
}

int compass_pq_connected(void *conn) { return conn && pq.status(conn) == 0; /* CONNECTION_OK */ }

int compass_pq_idle(void *conn) { return conn && pq.transaction_status(conn) == 0; /* PQTRANS_IDLE */ }

int compass_pq_ssl_in_use(void *conn) { return conn && pq.ssl_in_use(conn); }

const char *compass_pq_host(void *conn) {
    const char *host = conn ? pq.host(conn) : NULL;
    return host ? host : "";
}

const char *compass_pq_connection_error(void *conn) {
    if (!conn) return "libpq (libpq.so.5) could not be loaded";
    const char *message = pq.error_message(conn);
    return message ? message : "";
}

void compass_pq_finish(void *conn) { if (conn) pq.finish(conn); }

void *compass_pq_exec(void *conn, const char *sql, int count, const char *const *values, const int *lengths,
                      const int *formats, int timeout_ms, int *timed_out) {
    *timed_out = 0;
    int64_t end = now_ms() + timeout_ms;
    if (!pq.send_query_params(conn, sql, count, NULL, values, lengths, formats, 1)) return NULL;
    // Send everything (the connection is non-blocking), reading what the server answers meanwhile.
    for (;;) {
        int pending = pq.flush(conn);
        if (pending == 0) break;
        if (pending < 0) return NULL;
        int ready = wait_for(conn, POLLIN | POLLOUT, end);
        if (ready <= 0) { *timed_out = ready == 0; return NULL; }
        if (!pq.consume_input(conn)) return NULL;
    }
    while (pq.is_busy(conn)) {
        int ready = wait_for(conn, POLLIN, end);
        if (ready <= 0) { *timed_out = ready == 0; return NULL; }
        if (!pq.consume_input(conn)) return NULL;
    }
    // The statement's result; an error among several wins, the others are cleared.
    void *kept = NULL;
    for (void *result; (result = pq.get_result(conn)) != NULL;) {
        if (!kept || (compass_pq_succeeded(kept) && !compass_pq_succeeded(result))) {
            if (kept) pq.clear(kept);
            kept = result;
        } else {
            pq.clear(result);
        }
        while (pq.is_busy(conn)) {
            int ready = wait_for(conn, POLLIN, end);
            if (ready <= 0) { *timed_out = ready == 0; if (kept) pq.clear(kept); return NULL; }
            if (!pq.consume_input(conn)) { if (kept) pq.clear(kept); return NULL; }
        }
    }
    return kept;
}

int compass_pq_succeeded(void *result) {
    if (!result) return 0;
    int status = pq.result_status(result);
    return status == 1 /* PGRES_COMMAND_OK */ || status == 2 /* PGRES_TUPLES_OK */;
}

const char *compass_pq_sqlstate(void *result) {
    const char *state = result ? pq.result_error_field(result, 'C') : NULL;
    return state ? state : "";
}

const char *compass_pq_message(void *result) {
    const char *message = result ? pq.result_error_field(result, 'M') : NULL;
    return message ? message : "";
}

int compass_pq_rows(void *result) { return pq.ntuples(result); }
int compass_pq_columns(void *result) { return pq.nfields(result); }
int compass_pq_is_null(void *result, int row, int column) { return pq.getisnull(result, row, column); }
int compass_pq_length(void *result, int row, int column) { return pq.getlength(result, row, column); }
const char *compass_pq_value(void *result, int row, int column) { return pq.getvalue(result, row, column); }
void compass_pq_clear(void *result) { if (result) pq.clear(result); }
