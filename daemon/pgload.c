/* pgload — see pgload.h. */
#include "pgload.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void vem_pgload_error(const PGconn *conn, char *err, size_t errlen)
{
    const char *msg = PQerrorMessage(conn);
    snprintf(err, errlen, "%.*s", (int)strcspn(msg, "\n"), msg);
}

/* Connects with the keywords every load uses, then keys/values (NULL-terminated). */
static PGconn *s_connect(const char *conninfo, const char *app, const char *timeout_s,
                         const char *const *keys, const char *const *values, char *err,
                         size_t errlen)
{
    /* later keywords override what the expanded conninfo says (its own options stay) */
    const char *k[12] = {"dbname", "application_name", "connect_timeout", "client_encoding"};
    const char *v[12] = {conninfo, app, timeout_s, "UTF8"};
    size_t n = 4;
    for (size_t i = 0; keys && keys[i] && n < 11; i++, n++) {
        k[n] = keys[i];
        v[n] = values[i];
    }
    k[n] = v[n] = NULL;
    PGconn *conn = PQconnectdbParams(k, v, 1);
    if (!conn) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        vem_pgload_error(conn, err, errlen);
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

PGconn *vem_pgload_connect(const char *conninfo, const char *app, char *err, size_t errlen)
{
    return s_connect(conninfo, app, "10", NULL, NULL, err, errlen);
}

PGconn *vem_pgload_connect_short(const char *conninfo, const char *app, char *err, size_t errlen)
{
    static const char *const keys[] = {"tcp_user_timeout", "keepalives_idle", "keepalives_interval",
                                       "keepalives_count", NULL};
    static const char *const values[] = {"2000", "5", "2", "2", NULL};
    PGconn *conn = s_connect(conninfo, app, "2", keys, values, err, errlen);
    PGresult *res = conn ? PQexec(conn, "SET statement_timeout = 1000") : NULL;
    if (conn && PQresultStatus(res) != PGRES_COMMAND_OK) {
        vem_pgload_error(conn, err, errlen);
        PQfinish(conn);
        conn = NULL;
    }
    PQclear(res);
    return conn;
}

typedef struct {
    char *conninfo;
    vem_pgload_fn fn;
    void *arg;
    void (*drop)(void *);
    int fd;
} s_job_t;

static void *s_thread(void *p)
{
    s_job_t *job = p;
    void *result = job->fn(job->conninfo, job->arg);
    if (write(job->fd, &result, sizeof result) != (ssize_t)sizeof result && result)
        job->drop(result);
    free(job->arg);
    free(job->conninfo);
    free(job);
    return NULL;
}

int vem_pgload_start(const char *conninfo, vem_pgload_fn fn, void *arg, void (*drop)(void *),
                     int fd)
{
    s_job_t *job = malloc(sizeof *job);
    if (!job || !(job->conninfo = strdup(conninfo)))
        abort();
    job->fn = fn;
    job->arg = arg;
    job->drop = drop;
    job->fd = fd;
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&thread, &attr, s_thread, job);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(job->arg);
        free(job->conninfo);
        free(job);
        return -1;
    }
    return 0;
}
