/* The baseline of the PostgresStore benchmark: the same statements through libpq that
   PostgresStore sends for put, get and compare-and-swap of a 512-byte value (parameters and
   results in binary where it uses them), blocking calls and nothing else. The schema is made
   beforehand (compass-dev migrate). Prints operations per second.
   Usage: baseline-postgres CONNINFO OPERATIONS */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static PGresult *run(PGconn *conn, const char *sql, int n, const char *const *values, const int *lengths, const int *formats) {
    PGresult *result = PQexecParams(conn, sql, n, NULL, values, lengths, formats, 1);
    if (PQresultStatus(result) != PGRES_TUPLES_OK && PQresultStatus(result) != PGRES_COMMAND_OK) {
        fprintf(stderr, "%s\n", PQresultErrorMessage(result));
        exit(1);
    }
    return result;
}

static unsigned long long version_of(PGresult *result) {
    if (PQntuples(result) != 1) exit(1);
    const unsigned char *cell = (const unsigned char *)PQgetvalue(result, 0, PQnfields(result) - 1);
    unsigned long long version = 0;
    for (int i = 0; i < 8; i++) version = version << 8 | cell[i];
    return version;
}

int main(int argc, char **argv) {
    PGconn *conn = PQconnectdb(argv[1]);
    if (PQstatus(conn) != CONNECTION_OK) { fprintf(stderr, "%s", PQerrorMessage(conn)); return 1; }
    int operations = atoi(argv[2]);
    PQclear(run(conn, "SELECT set_config('statement_timeout', '9000', false)", 0, NULL, NULL, NULL));
    const char *put = "INSERT INTO compass_meta.records (key, value, version, expires_at) VALUES ($1, $2, "
                      "nextval('compass_meta.versions'), to_timestamp($3::float8)) ON CONFLICT (key) DO UPDATE SET "
                      "value = EXCLUDED.value, version = EXCLUDED.version, expires_at = EXCLUDED.expires_at RETURNING version";
    const char *get = "SELECT value, version FROM compass_meta.records WHERE key = $1 AND "
                      "(expires_at IS NULL OR expires_at > to_timestamp($2::float8))";
    const char *swap = "UPDATE compass_meta.records SET value = $2, version = nextval('compass_meta.versions'), "
                       "expires_at = to_timestamp($3::float8) WHERE key = $1 AND version = $4::bigint AND "
                       "(expires_at IS NULL OR expires_at > to_timestamp($5::float8)) RETURNING version";
    char value[512], key[64], now[32], expected[32];
    memset(value, 'x', sizeof value);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0, done = 0; done < operations; i++, done += 3) {
        snprintf(key, sizeof key, "bench/k%d", i % 1000);
        snprintf(now, sizeof now, "%ld", (long)time(NULL));
        const char *put_values[] = {key, value, NULL};
        int put_lengths[] = {0, sizeof value, 0}, put_formats[] = {0, 1, 0};
        PGresult *r = run(conn, put, 3, put_values, put_lengths, put_formats);
        snprintf(expected, sizeof expected, "%llu", version_of(r));
        PQclear(r);
        const char *get_values[] = {key, now};
        r = run(conn, get, 2, get_values, NULL, NULL);
        version_of(r);
        PQclear(r);
        const char *swap_values[] = {key, value, NULL, expected, now};
        int swap_lengths[] = {0, sizeof value, 0, 0, 0}, swap_formats[] = {0, 1, 0, 0, 0};
        PQclear(run(conn, swap, 5, swap_values, swap_lengths, swap_formats));
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%d\n", (int)(operations / s));
    PQfinish(conn);
    return 0;
}
