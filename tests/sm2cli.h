/* sm2cli — SM2 keys and signatures made by the `openssl` command line, independently of
 * daemon/sm2.c, for the suites that check it (sm2 unit suite, sm2 integration suite).
 *
 * Keys: `openssl genpkey -algorithm SM2`; the public key's X‖Y is read from the DER
 * SubjectPublicKeyInfo (`openssl pkey -pubout -outform DER`, whose last 65 bytes are the
 * uncompressed point 0x04 ‖ X ‖ Y). Signatures: `openssl pkeyutl -sign -rawin -digest sm3
 * -pkeyopt distid:ID` over the message file, whose DER ECDSA-Sig-Value is taken apart by
 * `openssl asn1parse` into R and S (each left-padded to 32 bytes, as terminals write them).
 * Every helper fails the current Check test on what it cannot do. */
#ifndef VEM_SM2CLI_H
#define VEM_SM2CLI_H

#include <stddef.h>
#include <stdint.h>

/* Makes DIR/NAME.pem, a new SM2 private key, and returns its public key X‖Y in xy. */
void vem_sm2cli_keygen(const char *dir, const char *name, uint8_t xy[64]);

/* Signs msg[0..len) with DIR/NAME.pem and distinguishing id distid; R and S 32 bytes each. */
void vem_sm2cli_sign(const char *dir, const char *name, const char *distid, const uint8_t *msg,
                     size_t len, uint8_t r[32], uint8_t s[32]);

#endif
