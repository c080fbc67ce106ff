/* actor — a thread that owns its state and talks to its parent over an inproc PAIR pipe.
 *
 * The parent creates the actor; the thread runs fn(pipe, args) and must call
 * vem_actor_ready() once its sockets are bound (or failed), which the constructor waits for,
 * so a returned actor is up. The thread then loops in one zmq_poll that includes the pipe;
 * a message "$TERM" on the pipe asks it to return. Destroying the actor sends "$TERM" and
 * joins the thread. The pipe belongs to the actor's thread; the parent uses its own end. */
#ifndef VEM_ACTOR_H
#define VEM_ACTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

typedef struct vem_actor vem_actor_t;

/* Body of an actor thread: pipe is its end of the PAIR; args is what the parent passed. */
typedef void(vem_actor_fn)(void *pipe, void *args);

/* Starts an actor named name (for logs and thread name) in the ZeroMQ context zctx and waits
 * for it to report; NULL with its error text in err if it failed to start. args stays owned
 * by the caller and must outlive the actor. */
vem_actor_t *vem_actor_new(void *zctx, const char *name, vem_actor_fn *fn, void *args, char *err,
                           size_t errlen);

/* Called once by the actor thread: error NULL means ready, else the reason it cannot start
 * (after which fn must return). */
void vem_actor_ready(void *pipe, const char *error);

/* Reads one message from the actor's pipe (call when it polled readable); true when it is the
 * termination request or the pipe failed, so the actor should return. */
bool vem_actor_should_stop(void *pipe);

/* The loop of an actor that serves one socket: calls on_ready(ctx, sock) whenever sock is
 * readable, until the termination request comes on the pipe (or polling fails). */
void vem_actor_serve(void *pipe, void *sock, void (*on_ready)(void *ctx, void *sock), void *ctx);

/* True when msg (from zmq_recv on the pipe) is the termination request. */
bool vem_actor_is_term(const void *msg, size_t len);

/* Sends msg on sock, waiting as long as the peer's queue is full (backpressure), but in
 * one-second polls that each bump *beats, so a thread waiting on a slow stage downstream is
 * not taken for a stuck one by main's watchdog. 0, or -1 when the socket failed (msg closed
 * either way). */
int vem_actor_send_wait(void *sock, zmq_msg_t *msg, atomic_uint_fast64_t *beats);

/* The parent's end of the pipe, to poll for messages the actor sends up. */
void *vem_actor_pipe(vem_actor_t *self);

/* Asks the actor to stop, joins its thread, frees it; accepts NULL; sets *self_p to NULL. */
void vem_actor_destroy(vem_actor_t **self_p);

#endif
