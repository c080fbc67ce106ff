/* sm2 — SM2 signature verification (GB/T 32918.2, SM2 with SM3) through OpenSSL 3's libcrypto.
 *
 * HJ 1239 terminals carry an SM2 public key as 64 bytes X‖Y (activation, 0x07) and sign with
 * it; a signature travels as R and S, each a big-endian integer of normally 32 bytes (33 with
 * a leading zero). This module turns X‖Y into an EVP_PKEY on the SM2 curve, and checks R, S
 * over a message: the message is hashed with SM3 after Z_A (the hash of the signer's
 * distinguishing id, the curve and the key), which libcrypto computes from the id set with
 * EVP_PKEY_CTX_set1_id. No elliptic-curve arithmetic of our own.
 *
 * Distinguishing id: GB/T 35276 (and GM/T 0009) name "1234567812345678" as the default user id
 * when the parties agree on no other; HJ 1239 names none that we could find, so that one.
 *
 * Thread safety: a key is immutable once made and may be shared by threads (reference counted
 * by libcrypto); each verification uses a context of its own. */
#ifndef VEM_SM2_H
#define VEM_SM2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The default SM2 distinguishing id (16 ASCII bytes). */
#define VEM_SM2_DEFAULT_ID "1234567812345678"

typedef struct vem_sm2_key vem_sm2_key_t;

/* A public key from its 64 bytes X‖Y; NULL when the point is not on the SM2 curve (or is the
 * point at infinity), with the reason in err. */
vem_sm2_key_t *vem_sm2_key_new(const uint8_t xy[64], char *err, size_t errlen);

/* One more reference to key (for another thread); returns key. */
vem_sm2_key_t *vem_sm2_key_ref(vem_sm2_key_t *key);

/* Drops one reference; accepts NULL and sets *key_p to NULL. */
void vem_sm2_key_destroy(vem_sm2_key_t **key_p);

/* Why a verification failed. */
typedef enum {
    VEM_SM2_OK = 0,
    VEM_SM2_BAD_ENCODING, /* R or S empty, zero, or over 32 bytes (33 only with a leading 0) */
    VEM_SM2_MISMATCH,     /* well formed, but not a signature of msg by this key */
} vem_sm2_status_t;

/* Checks R, S (big-endian, as in the frame) over msg[0..len) with the default id. */
vem_sm2_status_t vem_sm2_verify(const vem_sm2_key_t *key, const uint8_t *r, size_t rlen,
                                const uint8_t *s, size_t slen, const uint8_t *msg, size_t len);

/* Name of a status ("ok", "bad_encoding", "mismatch"); static string. */
const char *vem_sm2_status_name(vem_sm2_status_t st);

#endif
