#include "pq_bridge.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

// The few libpq functions used, by the signatures libpq-fe.h gives them (enums as int).
static struct {
    void *(*connectdb)(const char *);
    int (*status)(const void *);
    char *(*error_message)(const void *);
    void (*finish)(void *);
    void *(*exec_params)(void *, const char *, int, const unsigned int *, const char *const *, const int *, const int *, int);
    int (*result_status)(const void *);
    char *(*result_error_field)(const void *, int);
    int (*ntuples)(const void *);
    int (*nfields)(const void *);
    int (*getisnull)(const void *, int, int);
    int (*getlength)(const void *, int, int);
    char *(*getvalue)(const void *, int, int);
    void (*clear)(void *);
    int loaded;
} pq;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    void *lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return;
    pq.connectdb = dlsym(lib, "PQconnectdb");
    pq.status = dlsym(lib, "PQstatus");
    pq.error_message = dlsym(lib, "PQerrorMessage");
    pq.finish = dlsym(lib, "PQfinish");
    pq.exec_params = dlsym(lib, "PQexecParams");
    pq.result_status = dlsym(lib, "PQresultStatus");
    pq.result_error_field = dlsym(lib, "PQresultErrorField");
    pq.ntuples = dlsym(lib, "PQntuples");
    pq.nfields = dlsym(lib, "PQnfields");
    pq.getisnull = dlsym(lib, "PQgetisnull");
    pq.getlength = dlsym(lib, "PQgetlength");
    pq.getvalue = dlsym(lib, "PQgetvalue");
    pq.clear = dlsym(lib, "PQclear");
    pq.loaded = pq.connectdb && pq.status && pq.error_message && pq.finish && pq.exec_params && pq.result_status &&
                pq.result_error_field && pq.ntuples && pq.nfields && pq.getisnull && pq.getlength && pq.getvalue && pq.clear;
}

int compass_pq_load(void) {
    pthread_once(&once, load);
    return pq.loaded;
}

void *compass_pq_connect(const char *conninfo) {
    return compass_pq_load() ? pq.connectdb(conninfo) : NULL;
}

int compass_pq_connected(void *conn) { return conn && pq.status(conn) == 0; /* CONNECTION_OK */ }

const char *compass_pq_connection_error(void *conn) {
    if (!conn) return "libpq (libpq.so.5) could not be loaded";
    const char *message = pq.error_message(conn);
    return message ? message : "";
}

void compass_pq_finish(void *conn) { if (conn) pq.finish(conn); }

void *compass_pq_exec(void *conn, const char *sql, int count, const char *const *values, const int *lengths,
                      const int *formats) {
    return pq.exec_params(conn, sql, count, NULL, values, lengths, formats, 1);
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
