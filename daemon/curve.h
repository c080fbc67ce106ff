/* curve — CURVE (RFC 26) on the gateway and station endpoints, with a ZAP handler (RFC 27)
 * that admits only the client public keys listed in a directory.
 *
 * Key files are libconfig text, written by `vemctl keys gen NAME`: NAME.key holds
 * `public_key = "<Z85>"; secret_key = "<Z85>";` (zmq_curve_keypair, 40 characters each) and
 * NAME.pub only the public key. A server endpoint reads its pair from a .key file; its clients
 * directory holds one NAME.pub per admitted client (other files are ignored).
 *
 * ZAP runs only at the handshake, so removing a key must also cut off a client that is already
 * connected: the handler's reply names the client's key as its User-Id, every message carries
 * it (zmq_msg_gets "User-Id"), and ingest drops, counts and logs messages whose key is no
 * longer listed (vem_curve_admits_msg). We chose this over unbinding and binding again, which
 * would also drop what the admitted clients had in flight.
 *
 * Threads: main creates the object, adds the endpoints and reloads the directories (SIGHUP);
 * the handler runs as an actor (vem_curve_zap_actor) that must be up before the CURVE sockets
 * bind (libzmq admits everyone when no handler answers) and stop after they close; ingest
 * checks messages. The key sets are guarded by a mutex; each endpoint's one-entry cache of
 * the last key checked belongs to ingest. */
#ifndef VEM_CURVE_H
#define VEM_CURVE_H

#include "metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

#define VEM_CURVE_KEY_TEXT 41 /* Z85 of a 32-byte key, with its NUL */

typedef struct vem_curve vem_curve_t;
typedef struct vem_curve_endpoint vem_curve_endpoint_t;

/* A handler for the context zctx, counting into metrics; endpoints are added next. */
vem_curve_t *vem_curve_new(void *zctx, vem_metrics_t *metrics);

/* Frees everything; accepts NULL; the actor must have stopped. */
void vem_curve_destroy(vem_curve_t **self_p);

/* Makes domain ("gateways", "stations") a CURVE endpoint with the server pair of key_path and
 * the clients of clients_dir. 0, or -1 with "FILE: what is wrong" in err. */
int vem_curve_add(vem_curve_t *self, const char *domain, const char *key_path,
                  const char *clients_dir, char *err, size_t errlen);

/* The endpoint of domain, or NULL when it is plain. */
vem_curve_endpoint_t *vem_curve_endpoint(vem_curve_t *self, const char *domain);

/* Re-reads every clients directory (SIGHUP). A directory that cannot be read keeps its old
 * keys (logged); -1 then, else 0. */
int vem_curve_reload(vem_curve_t *self);

/* Makes sock (before its bind) a CURVE server of ep, authenticated by the handler. 0 or -1. */
int vem_curve_serve(vem_curve_endpoint_t *ep, void *sock, char *err, size_t errlen);

/* True when msg comes from a key still listed; otherwise counts and logs it (ingest thread).
 * stations (NULL: not wanted) gets the station ids the key may deliver for, each followed by
 * '\n': its .pub file's `stations = ["ID", ...];`, else the key's name; "" when refused. */
bool vem_curve_admits_msg(vem_curve_endpoint_t *ep, zmq_msg_t *msg, char *stations, size_t cap);

/* True when station_id is one of stations (as vem_curve_admits_msg gives them). */
bool vem_curve_station_listed(const char *stations, const char *station_id);

/* Actor body (actor.h); args is the vem_curve_t. Binds inproc://zeromq.zap.01. */
void vem_curve_zap_actor(void *pipe, void *args);

/* Reads a key file: the public key always, the secret when secret is not NULL (then the file
 * must hold one that matches the public key). 0, or -1 with the reason in err. */
int vem_curve_read_key(const char *path, char public_key[VEM_CURVE_KEY_TEXT],
                       char secret_key[VEM_CURVE_KEY_TEXT], char *err, size_t errlen);

/* vem_curve_read_key of a server's pair, refusing a file every user may read. */
int vem_curve_read_server_key(const char *path, char public_key[VEM_CURVE_KEY_TEXT],
                              char secret_key[VEM_CURVE_KEY_TEXT], char *err, size_t errlen);

/* Writes a fresh pair as DIR/NAME.key (mode 0600) and DIR/NAME.pub; refuses to overwrite.
 * 0, or -1 with the reason in err. */
int vem_curve_generate(const char *dir, const char *name, char *err, size_t errlen);

/* Makes sock (before its connect) a CURVE client with the pair of client_key and the public
 * key of server_key (a .pub or .key file). 0, or -1 with the reason in err. */
int vem_curve_client(void *sock, const char *client_key, const char *server_key, char *err,
                     size_t errlen);

/* True when a ZeroMQ endpoint only reaches this machine: ipc://, inproc://, or tcp:// on a
 * loopback address or localhost. */
bool vem_curve_is_local(const char *endpoint);

#endif
