/* peers — terminal connections counted per source IP address, so one host cannot take every
 * connection vemd holds (terminals.max_per_address) or open them faster than
 * terminals.new_per_address_s.
 *
 * An open-addressing table keyed by the address text libzmq gives (Peer-Address). An entry
 * lives while its address has open connections, or arrivals in the current second; the
 * ingest thread calls vem_peers_sweep() once a second to forget the others, so the table
 * holds at most the open connections plus one second's arrivals. Not thread-safe: owned by
 * the ingest thread. */
#ifndef VEM_PEERS_H
#define VEM_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vem_peers vem_peers_t;

typedef enum {
    VEM_PEERS_OK = 0,   /* admitted: counted as open until vem_peers_release() */
    VEM_PEERS_TOO_MANY, /* the address holds max_per_address connections already */
    VEM_PEERS_TOO_FAST, /* the address opened new_per_s connections this second already */
} vem_peers_verdict_t;

/* New table for these limits; NULL when out of memory. */
vem_peers_t *vem_peers_new(unsigned max_per_address, unsigned new_per_s);

/* Frees the table; accepts NULL; sets *self_p to NULL. */
void vem_peers_destroy(vem_peers_t **self_p);

/* A new connection from address (text, at most 63 bytes are looked at) at now_us: counts the
 * arrival, and the connection as open when the verdict is VEM_PEERS_OK. */
vem_peers_verdict_t vem_peers_admit(vem_peers_t *self, const char *address, int64_t now_us);

/* An admitted connection from address has ended. */
void vem_peers_release(vem_peers_t *self, const char *address);

/* Open connections from address. */
unsigned vem_peers_open(const vem_peers_t *self, const char *address);

/* Takes one of the per_s activations address may have judged in the second of now_us (a
 * fixed window, as for arrivals); false when they are spent, or the address holds no
 * connection admitted here. */
bool vem_peers_take(vem_peers_t *self, const char *address, unsigned per_s, int64_t now_us);

/* Forgets addresses with no open connection and no arrival in the second of now_us. */
void vem_peers_sweep(vem_peers_t *self, int64_t now_us);

/* Addresses held. */
size_t vem_peers_count(const vem_peers_t *self);

/* Name of a verdict, for logs and metric labels: "ok", "address_limit", "address_rate". */
const char *vem_peers_verdict_name(vem_peers_verdict_t verdict);

#endif
