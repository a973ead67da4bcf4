#ifndef COMPASS_PQ_BRIDGE_H
#define COMPASS_PQ_BRIDGE_H

// libpq, opened with dlopen the first time a PostgreSQL store is used: an executable whose
// store is files or etcd never maps libpq or its dependencies. Connections and results are
// opaque pointers (PGconn *, PGresult *).

/// 1 when libpq could be loaded.
int compass_pq_load(void);
/// A connection (check compass_pq_connected), or NULL when libpq is missing, out of memory, or
/// the connection could not be made non-blocking. Made within `timeout_ms` (`*timed_out` set to
/// 1 when that ran out; a host name is resolved before, outside it), then non-blocking.
void *compass_pq_connect(const char *conninfo, int timeout_ms, int *timed_out);
int compass_pq_connected(void *conn);
/// 1 when the connection is idle outside any transaction (PQtransactionStatus is PQTRANS_IDLE):
/// the only state in which a kept connection may serve the next call.
int compass_pq_idle(void *conn);
/// 1 when the connection is encrypted (PQsslInUse).
int compass_pq_ssl_in_use(void *conn);
/// The host the connection reached (PQhost: a name, an address, or a Unix socket's folder).
const char *compass_pq_host(void *conn);
/// The connection's last error message (libpq's words; no password is in them).
const char *compass_pq_connection_error(void *conn);
void compass_pq_finish(void *conn);
/// One statement with parameters (NULL value: SQL NULL; format 1: binary), results in binary,
/// answered within `timeout_ms` or given up. NULL when the connection failed before an answer or
/// the time ran out (`*timed_out` 1): the connection is then in an unknown state; finish it.
void *compass_pq_exec(void *conn, const char *sql, int count, const char *const *values, const int *lengths,
                      const int *formats, int timeout_ms, int *timed_out);
/// 1 for a command or rows answered, 0 for an error.
int compass_pq_succeeded(void *result);
/// The SQLSTATE of an error ("" if none) and its primary message.
const char *compass_pq_sqlstate(void *result);
const char *compass_pq_message(void *result);
int compass_pq_rows(void *result);
int compass_pq_columns(void *result);
int compass_pq_is_null(void *result, int row, int column);
int compass_pq_length(void *result, int row, int column);
const char *compass_pq_value(void *result, int row, int column);
void compass_pq_clear(void *result);

#endif
