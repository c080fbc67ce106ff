/* actor — threads with an inproc pipe, synchronized start and a terminate message; see
 * actor.h. The pipe endpoint name is unique per actor (its address), so any number of actors
 * can share one context. */
#include "actor.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_TERM  "$TERM"
#define S_READY "$READY"

struct vem_actor {
    pthread_t thread;
    void *pipe; /* parent's end */
    void *child;
    vem_actor_fn *fn;
    void *args;
    char name[16];
    bool joined;
};

static void *s_run(void *arg)
{
    vem_actor_t *self = arg;
    pthread_setname_np(pthread_self(), self->name);
    self->fn(self->child, self->args);
    /* The thread closes its own socket: sockets are not shared between threads. */
    zmq_close(self->child);
    return NULL;
}

void vem_actor_ready(void *pipe, const char *error)
{
    char msg[512];
    int len = snprintf(msg, sizeof msg, "%s%s", error ? "" : S_READY, error ? error : "");
    zmq_send(pipe, msg, (size_t)len < sizeof msg ? (size_t)len : sizeof msg - 1, 0);
}

bool vem_actor_is_term(const void *msg, size_t len)
{
    return len == strlen(S_TERM) && memcmp(msg, S_TERM, len) == 0;
}

vem_actor_t *vem_actor_new(void *zctx, const char *name, vem_actor_fn *fn, void *args, char *err,
                           size_t errlen)
{
    vem_actor_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    snprintf(self->name, sizeof self->name, "%s", name);
    self->fn = fn;
    self->args = args;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://vem-actor-%p", (void *)self);
    self->pipe = zmq_socket(zctx, ZMQ_PAIR);
    self->child = zmq_socket(zctx, ZMQ_PAIR);
    int zero = 0;
    zmq_setsockopt(self->pipe, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(self->child, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(self->pipe, endpoint) != 0 || zmq_connect(self->child, endpoint) != 0) {
        snprintf(err, errlen, "%s: pipe: %s", name, zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        snprintf(err, errlen, "%s: cannot start thread", name);
        goto fail;
    }
    char msg[512];
    int len = zmq_recv(self->pipe, msg, sizeof msg - 1, 0);
    if (len < 0 || (size_t)len != strlen(S_READY) || memcmp(msg, S_READY, (size_t)len) != 0) {
        msg[len < 0 ? 0 : (size_t)len < sizeof msg ? (size_t)len : sizeof msg - 1] = '\0';
        snprintf(err, errlen, "%s: %s", name, len < 0 ? zmq_strerror(zmq_errno()) : msg);
        pthread_join(self->thread, NULL);
        zmq_close(self->pipe);
        free(self);
        return NULL;
    }
    return self;
fail:
    zmq_close(self->pipe);
    zmq_close(self->child);
    free(self);
    return NULL;
}

bool vem_actor_should_stop(void *pipe)
{
    char msg[16];
    int len = zmq_recv(pipe, msg, sizeof msg, 0);
    return len < 0 || vem_actor_is_term(msg, (size_t)len);
}

void vem_actor_serve(void *pipe, void *sock, void (*on_ready)(void *ctx, void *sock), void *ctx)
{
    for (;;) {
        zmq_pollitem_t items[] = {{pipe, 0, ZMQ_POLLIN, 0}, {sock, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, -1) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            return;
        }
        if ((items[0].revents & ZMQ_POLLIN) && vem_actor_should_stop(pipe))
            return;
        if (items[1].revents & ZMQ_POLLIN)
            on_ready(ctx, sock);
    }
}

void *vem_actor_pipe(vem_actor_t *self)
{
    return self->pipe;
}

void vem_actor_destroy(vem_actor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vem_actor_t *self = *self_p;
    zmq_send(self->pipe, S_TERM, strlen(S_TERM), 0);
    pthread_join(self->thread, NULL);
    zmq_close(self->pipe);
    free(self);
    *self_p = NULL;
}

int vem_actor_send_wait(void *sock, zmq_msg_t *msg, atomic_uint_fast64_t *beats)
{
    for (;;) {
        if (zmq_msg_send(msg, sock, ZMQ_DONTWAIT) >= 0)
            return 0;
        if (zmq_errno() != EAGAIN && zmq_errno() != EINTR)
            break;
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLOUT, 0};
        if (zmq_poll(&item, 1, 1000) < 0 && zmq_errno() != EINTR)
            break;
        if (beats)
            atomic_fetch_add_explicit(beats, 1, memory_order_relaxed);
    }
    zmq_msg_close(msg);
    return -1;
}
