/* sm2 — SM2 public keys and signature checks through libcrypto; see sm2.h.
 *
 * Following OpenSSL's EVP_PKEY-SM2(7): the key is an EVP_PKEY of type SM2 made from its
 * uncompressed point (0x04 ‖ X ‖ Y) with EVP_PKEY_fromdata and checked to lie on the curve;
 * a check builds the DER ECDSA-Sig-Value (SEQUENCE of the INTEGERs R and S) that libcrypto's
 * SM2 verifier takes, sets the distinguishing id on a fresh EVP_PKEY_CTX and runs
 * EVP_DigestVerify with SM3. Called from the workers' threads and ingest's; no shared state. */
#include "sm2.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The EVP_PKEY itself is the handle: libcrypto counts its references. */
struct vem_sm2_key {
    EVP_PKEY *pkey;
};

/* SM3, fetched once: EVP_sm3() would look the provider's implementation up on every check. */
static EVP_MD *s_sm3;
static pthread_once_t s_sm3_once = PTHREAD_ONCE_INIT;

static void s_fetch_sm3(void)
{
    s_sm3 = EVP_MD_fetch(NULL, "SM3", NULL);
    if (!s_sm3)
        abort(); /* Debian's libcrypto has it; without it nothing here can work */
}

static void s_ssl_error(char *err, size_t errlen, const char *what)
{
    char buf[160] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    if (err && errlen)
        snprintf(err, errlen, "%s%s%s", what, *buf ? ": " : "", buf);
}

vem_sm2_key_t *vem_sm2_key_new(const uint8_t xy[64], char *err, size_t errlen)
{
    uint8_t point[65];
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, xy, 64);
    char group[] = "SM2";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point),
        OSSL_PARAM_construct_end()};
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        s_ssl_error(err, errlen, "not an SM2 public key");
        goto fail;
    }
    EVP_PKEY_CTX_free(ctx);
    /* fromdata takes any bytes of the right form: the point must be on the curve */
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (!ctx || EVP_PKEY_public_check(ctx) != 1) {
        s_ssl_error(err, errlen, "the public key is not a point of the SM2 curve");
        goto fail;
    }
    EVP_PKEY_CTX_free(ctx);
    vem_sm2_key_t *key = calloc(1, sizeof *key);
    if (!key)
        abort();
    key->pkey = pkey;
    return key;
fail:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    return NULL;
}

vem_sm2_key_t *vem_sm2_key_ref(vem_sm2_key_t *key)
{
    if (!key)
        return NULL;
    vem_sm2_key_t *copy = calloc(1, sizeof *copy);
    if (!copy || EVP_PKEY_up_ref(key->pkey) != 1)
        abort();
    copy->pkey = key->pkey;
    return copy;
}

void vem_sm2_key_destroy(vem_sm2_key_t **key_p)
{
    if (!key_p || !*key_p)
        return;
    EVP_PKEY_free((*key_p)->pkey);
    free(*key_p);
    *key_p = NULL;
}

/* R or S as a BIGNUM: 1..32 bytes, or 33 with a leading zero, and not zero; NULL otherwise. */
static BIGNUM *s_part(const uint8_t *p, size_t n)
{
    if (n == 0 || n > 33 || (n == 33 && p[0] != 0))
        return NULL;
    BIGNUM *bn = BN_bin2bn(p, (int)n, NULL);
    if (bn && BN_is_zero(bn)) {
        BN_free(bn);
        return NULL;
    }
    return bn;
}

vem_sm2_status_t vem_sm2_verify(const vem_sm2_key_t *key, const uint8_t *r, size_t rlen,
                                const uint8_t *s, size_t slen, const uint8_t *msg, size_t len)
{
    BIGNUM *br = s_part(r, rlen), *bs = s_part(s, slen);
    ECDSA_SIG *sig = ECDSA_SIG_new();
    if (!sig)
        abort();
    if (!br || !bs) {
        BN_free(br);
        BN_free(bs);
        ECDSA_SIG_free(sig);
        return VEM_SM2_BAD_ENCODING;
    }
    ECDSA_SIG_set0(sig, br, bs); /* sig owns them now */
    uint8_t der[80];             /* 2 + 2 × (2 + 33) at most */
    uint8_t *p = der;
    int der_len = i2d_ECDSA_SIG(sig, &p);
    ECDSA_SIG_free(sig);
    if (der_len <= 0 || (size_t)der_len > sizeof der)
        return VEM_SM2_BAD_ENCODING;

    vem_sm2_status_t st = VEM_SM2_MISMATCH;
    pthread_once(&s_sm3_once, s_fetch_sm3);
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    if (!mctx || !pctx)
        abort();
    if (EVP_PKEY_CTX_set1_id(pctx, VEM_SM2_DEFAULT_ID, strlen(VEM_SM2_DEFAULT_ID)) > 0) {
        EVP_MD_CTX_set_pkey_ctx(mctx, pctx); /* mctx does not free it: we do */
        if (EVP_DigestVerifyInit(mctx, NULL, s_sm3, NULL, key->pkey) > 0 &&
            EVP_DigestVerify(mctx, der, (size_t)der_len, msg, len) == 1)
            st = VEM_SM2_OK;
    }
    ERR_clear_error(); /* a mismatch leaves errors on this thread's queue */
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_CTX_free(pctx);
    return st;
}

const char *vem_sm2_status_name(vem_sm2_status_t st)
{
    switch (st) {
    case VEM_SM2_OK:
        return "ok";
    case VEM_SM2_BAD_ENCODING:
        return "bad_encoding";
    case VEM_SM2_MISMATCH:
        return "mismatch";
    }
    return "?";
}
