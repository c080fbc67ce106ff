/* pgload — see pgload.h. */
#include "pgload.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

PGconn *vem_pgload_connect(const char *conninfo, const char *app, char *err, size_t errlen)
{
    /* later keywords override what the expanded conninfo says */
    const char *keys[] = {"dbname", "application_name", "connect_timeout", "client_encoding", NULL};
    const char *values[] = {conninfo, app, "10", "UTF8", NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(conn);
        snprintf(err, errlen, "%.*s", (int)strcspn(msg, "\n"), msg);
        PQfinish(conn);
        return NULL;
    }
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
