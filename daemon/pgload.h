/* pgload — reading PostgreSQL away from the threads that must not wait on it.
 *
 * The vehicle registry with the terminal keys, the daily completeness counts and the roadside
 * history are each read by a query whose time the database decides. Main and the workers must
 * keep their pace meanwhile (the watchdog, intake), so each load runs on a detached thread of
 * its own and hands its result back as a pointer written to a pipe the owner polls. This module
 * is that pattern once, and the one way those loads connect. The sink's writer connects
 * asynchronously (pgwrite.c) and is not one of them. */
#ifndef VEM_PGLOAD_H
#define VEM_PGLOAD_H

#include <libpq-fe.h>
#include <stddef.h>

/* Connects, waiting at most 10 s, as application_name app, in UTF-8. NULL on failure, with the
 * first line of libpq's message in err. */
PGconn *vem_pgload_connect(const char *conninfo, const char *app, char *err, size_t errlen);

/* The same for a thread that must not wait long on the database (a worker): 2 s to connect
 * (per address), a server that stops answering given up within about 10 s (tcp_user_timeout,
 * keepalives), each statement cut after 1 s (SET statement_timeout). */
PGconn *vem_pgload_connect_short(const char *conninfo, const char *app, char *err, size_t errlen);

/* The first line of libpq's last message on conn, in err. */
void vem_pgload_error(const PGconn *conn, char *err, size_t errlen);

/* The load: its result (NULL after a failure, which it logged), from conninfo and its arg. */
typedef void *(*vem_pgload_fn)(const char *conninfo, void *arg);

/* Starts a detached thread that runs fn(conninfo, arg) and writes the result's pointer to fd;
 * drop(result) frees a result the pipe did not take. arg is malloc'd and becomes the module's
 * (freed after fn returns, or at once when the thread cannot start). 0, or -1 when no thread
 * could start. */
int vem_pgload_start(const char *conninfo, vem_pgload_fn fn, void *arg, void (*drop)(void *),
                     int fd);

#endif
