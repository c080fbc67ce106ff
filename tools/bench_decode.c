/* bench-decode — throughput of the remote-OBD path on one core.
 *
 * Builds a realistic mix in memory with the encoder: HJ 1239 real-time frames of ten 1 Hz
 * diesel-stream samples each plus a signature, an OBD block in one frame of 60, one frame in
 * 20 a re-send, values varying like a truck on the road. Then times, best of several runs of
 * at least a second each:
 *   (a) the full path: reassembler over the concatenated stream (64 KiB chunks, so some
 *       frames are split) and a decode of every frame;
 *   (b) a checksum-only pass: walk the frames by their length field and XOR every byte, the
 *       least work any correct decoder must do;
 *   (c) the signed path (terminals.signatures flag or enforce): (a) plus what a worker adds
 *       per frame, a reference to the VIN's key and the SM2 check of the frame's signature
 *       (every frame is really signed, by a key made here through libcrypto, over the bytes
 *       README "Signatures" names), all of which must verify.
 * Ends with one line of key=value figures. Targets: >= 3 M frames/s, ratio (a)/(b) >= 0.1;
 * signed_ratio = (c)/(a), verified ÷ unverified frames/s. */
#include "bench_util.h"
#include "hj1239.h"
#include "keys.h"
#include "reasm.h"
#include "sm2.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { S_FRAMES = 6000, S_SAMPLES = 10, S_CHUNK = 65536, S_RUNS = 5, S_SIGNED_RUNS = 3 };

static uint64_t s_rng = 0x1239174920180001ULL;

static uint32_t s_rand(void)
{
    s_rng = s_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(s_rng >> 33);
}

static uint32_t s_between(uint32_t lo, uint32_t hi)
{
    return lo + s_rand() % (hi - lo + 1);
}

/* One truck-like diesel sample around raw value space (scales per hj1239.md). */
static void s_sample(vem_hj1239_block_t *b, int64_t t, uint32_t odo)
{
    memset(b, 0, sizeof *b);
    b->type = VEM_HJ1239_BLOCK_STREAM;
    b->time = t;
    uint32_t *r = b->raw;
    r[VEM_HJ1239_F_SPEED] = s_between(0, 110) * 256 + s_between(0, 255);
    r[VEM_HJ1239_F_BARO] = s_between(190, 205);
    r[VEM_HJ1239_F_TORQUE] = s_between(125, 225);
    r[VEM_HJ1239_F_FRICTION] = s_between(125, 140);
    r[VEM_HJ1239_F_RPM] = s_between(600, 2200) * 8;
    r[VEM_HJ1239_F_FUEL_RATE] = s_between(20, 1200);
    r[VEM_HJ1239_F_NOX_UP] = 4000 + s_between(0, 30000);
    r[VEM_HJ1239_F_NOX_DOWN] = s_rand() % 64 == 0 ? 0xFFFF : 4000 + s_between(0, 4000);
    r[VEM_HJ1239_F_REAGENT] = s_between(20, 250);
    r[VEM_HJ1239_F_INTAKE] = s_between(1000, 30000);
    r[VEM_HJ1239_F_SCR_IN] = (273 + s_between(150, 450)) * 32 + s_between(0, 31);
    r[VEM_HJ1239_F_SCR_OUT] = (273 + s_between(150, 420)) * 32 + s_between(0, 31);
    r[VEM_HJ1239_F_DPF_DP] = s_between(0, 200);
    r[VEM_HJ1239_F_COOLANT] = s_between(100, 135);
    r[VEM_HJ1239_F_FUEL_LEVEL] = s_between(25, 250);
    r[VEM_HJ1239_F_POS_STATUS] = s_rand() % 50 == 0 ? 1 : 0;
    r[VEM_HJ1239_F_LON] = 118000000 + s_between(0, 1500000);
    r[VEM_HJ1239_F_LAT] = 31500000 + s_between(0, 1000000);
    r[VEM_HJ1239_F_ODOMETER] = odo;
    b->novalue = vem_hj1239_novalue(b);
}

static void s_obd(vem_hj1239_frame_t *f, vem_hj1239_block_t *b, int64_t t)
{
    memset(b, 0, sizeof *b);
    b->type = VEM_HJ1239_BLOCK_OBD;
    b->time = t;
    b->obd = 0;
    b->raw[VEM_HJ1239_F_OBD_PROTOCOL] = 2;
    b->raw[VEM_HJ1239_F_MIL] = s_rand() % 10 == 0;
    b->raw[VEM_HJ1239_F_DIAG_SUPPORTED] = 0x0C00;
    b->raw[VEM_HJ1239_F_DIAG_READY] = 0x0800;
    b->raw[VEM_HJ1239_F_DTC_COUNT] = s_rand() % 3;
    vem_hj1239_obd_t *o = &f->obd[0];
    memcpy(o->vin, "LZZBENCHVIN000001", 17);
    memset(o->scin, 0, 18);
    memcpy(o->scin, "CAL-0001", 8);
    memset(o->cvn, 0, 18);
    memcpy(o->cvn, "CVN0001", 7);
    for (int i = 0; i < 36; i++)
        o->iupr[i] = (uint8_t)s_rand();
    o->dtc_first = 0;
    o->dtc_n = (uint16_t)b->raw[VEM_HJ1239_F_DTC_COUNT];
    for (int i = 0; i < o->dtc_n; i++)
        f->dtcs[i] = s_rand();
    f->ndtcs = o->dtc_n;
    f->nobd = 1;
    b->novalue = vem_hj1239_novalue(b);
}

/* A new SM2 key pair; its public key as X‖Y in xy. */
static EVP_PKEY *s_keygen(uint8_t xy[64])
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
    uint8_t point[65];
    size_t n = 0;
    if (!key ||
        !EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &n) ||
        n != 65)
        abort();
    memcpy(xy, point + 1, 64);
    return key;
}

/* Signs m[0..n) with the default SM2 id; R and S 32 bytes each. */
static void s_sign(EVP_PKEY *key, const uint8_t *m, size_t n, uint8_t r[32], uint8_t s[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    uint8_t der[80];
    size_t dl = sizeof der;
    if (!md || !pc || EVP_PKEY_CTX_set1_id(pc, VEM_SM2_DEFAULT_ID, 16) <= 0)
        abort();
    EVP_MD_CTX_set_pkey_ctx(md, pc);
    if (EVP_DigestSignInit(md, NULL, EVP_sm3(), NULL, key) <= 0 ||
        EVP_DigestSign(md, der, &dl, m, n) <= 0)
        abort();
    const uint8_t *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    if (!sig || BN_bn2binpad(ECDSA_SIG_get0_r(sig), r, 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(sig), s, 32) != 32)
        abort();
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_CTX_free(pc);
}

/* The mix, concatenated; *frames and *samples count what it holds. Every frame is signed by
 * signer over its data unit up to the signature. */
static uint8_t *s_build(EVP_PKEY *signer, size_t *len, size_t *frames, size_t *samples)
{
    vem_hj1239_frame_t *f = calloc(1, sizeof *f);
    size_t cap = (size_t)S_FRAMES * 700, n = 0;
    uint8_t *buf = malloc(cap);
    if (!f || !buf)
        abort();
    int64_t t = 1709597350; /* 2024-03-05 08:09:10 +08:00 */
    uint32_t odo = 1234567;
    *samples = 0;
    for (size_t i = 0; i < S_FRAMES; i++) {
        memset(f, 0, offsetof(vem_hj1239_frame_t, vendor));
        f->cmd = i % 20 == 7 ? VEM_HJ1239_CMD_RESEND : VEM_HJ1239_CMD_REALTIME;
        f->header = VEM_HJ1239_HEADER_TERMINAL;
        snprintf((char *)f->vin, 18, "LZZBENCH%09zu", i % 1000);
        f->sw_version = 2;
        f->encryption = VEM_HJ1239_ENC_NONE;
        f->layout = VEM_HJ1239_LAYOUT_BLOCK_TIME;
        f->has_time = f->has_sig = true;
        f->seq = (uint16_t)(i % 65531 + 1);
        if (i % 60 == 0)
            s_obd(f, &f->blocks[f->nblocks++], t);
        for (int k = 0; k < S_SAMPLES; k++) {
            odo += s_between(0, 3);
            s_sample(&f->blocks[f->nblocks++], t + k, odo);
        }
        *samples += S_SAMPLES;
        f->time = t + S_SAMPLES;
        t += S_SAMPLES;
        f->sig.rlen = f->sig.slen = 32;
        size_t got;
        if (vem_hj1239_encode(f, buf + n, cap - n, &got) != 0)
            abort();
        size_t unit = ((size_t)buf[n + 22] << 8 | buf[n + 23]) - 66; /* up to the signature */
        s_sign(signer, buf + n + VEM_HJ1239_HEADER_LEN, unit, f->sig.r, f->sig.s);
        if (vem_hj1239_encode(f, buf + n, cap - n, &got) != 0)
            abort();
        n += got;
    }
    free(f);
    *len = n;
    *frames = S_FRAMES;
    return buf;
}

/* (a): reassemble and decode everything once; returns samples decoded. */
static size_t s_full_pass(vem_reasm_t *ra, vem_hj1239_frame_t *f, const uint8_t *buf, size_t len,
                          size_t *frames)
{
    size_t samples = 0, nframes = 0;
    vem_reasm_event_t ev;
    for (size_t off = 0; off < len; off += S_CHUNK) {
        vem_reasm_feed(ra, buf + off, len - off < S_CHUNK ? len - off : S_CHUNK);
        while (vem_reasm_next(ra, &ev) != VEM_REASM_NEED_MORE) {
            if (ev.kind != VEM_REASM_FRAME ||
                vem_hj1239_decode(ev.data, ev.len, VEM_HJ1239_TRUSTED_BCC, f, NULL) != 0)
                abort();
            nframes++;
            for (size_t i = 0; i < f->nblocks; i++)
                samples += f->blocks[i].type == VEM_HJ1239_BLOCK_STREAM;
        }
    }
    *frames = nframes;
    return samples;
}

/* (c): (a) plus a key reference and the signature check per frame; every one must verify. */
static size_t s_signed_pass(vem_reasm_t *ra, vem_hj1239_frame_t *f, vem_sm2_key_t *key,
                            const uint8_t *buf, size_t len)
{
    size_t nframes = 0;
    vem_reasm_event_t ev;
    for (size_t off = 0; off < len; off += S_CHUNK) {
        vem_reasm_feed(ra, buf + off, len - off < S_CHUNK ? len - off : S_CHUNK);
        while (vem_reasm_next(ra, &ev) != VEM_REASM_NEED_MORE) {
            if (ev.kind != VEM_REASM_FRAME ||
                vem_hj1239_decode(ev.data, ev.len, VEM_HJ1239_TRUSTED_BCC, f, NULL) != 0)
                abort();
            vem_sm2_key_t *ref = vem_sm2_key_ref(key); /* what the worker's lookup hands out */
            size_t n = 0;
            const uint8_t *msg = vem_keys_signed_bytes(f, ev.data, ev.len, &n);
            if (!msg || vem_sm2_verify(ref, f->sig.r, f->sig.rlen, f->sig.s, f->sig.slen, msg, n) !=
                            VEM_SM2_OK)
                abort();
            vem_sm2_key_destroy(&ref);
            nframes++;
        }
    }
    return nframes;
}

/* (b): frames walked by their length field, every byte XORed. */
static size_t s_checksum_pass(const uint8_t *buf, size_t len)
{
    size_t frames = 0, bad = 0;
    for (size_t p = 0; p + VEM_HJ1239_MIN_FRAME <= len;) {
        size_t total = ((size_t)buf[p + 22] << 8 | buf[p + 23]) + VEM_HJ1239_MIN_FRAME;
        bad += vem_hj1239_bcc(buf + p + 2, total - 3) != buf[p + total - 1];
        p += total;
        frames++;
    }
    if (bad)
        abort();
    return frames;
}

int main(void)
{
    size_t len, nframes, nsamples;
    uint8_t xy[64];
    EVP_PKEY *signer = s_keygen(xy);
    uint8_t *buf = s_build(signer, &len, &nframes, &nsamples);
    vem_sm2_key_t *key = vem_sm2_key_new(xy, NULL, 0);
    if (!key)
        abort();
    vem_reasm_t *ra = vem_reasm_new(0);
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    if (!ra || !f)
        abort();
    printf("mix: %zu frames, %zu samples, %zu bytes (%.0f bytes/frame)\n", nframes, nsamples, len,
           (double)len / nframes);

    double best_full = 0, best_sum = 0;
    size_t samples_per_pass = 0;
    for (int run = 0; run < S_RUNS; run++) {
        size_t passes = 0, frames = 0;
        double t0 = vem_bench_now(), dt;
        do {
            size_t got;
            samples_per_pass = s_full_pass(ra, f, buf, len, &got);
            frames += got;
            passes++;
        } while ((dt = vem_bench_now() - t0) < 1.0);
        if (frames / dt > best_full)
            best_full = frames / dt;
        frames = 0;
        t0 = vem_bench_now();
        do {
            frames += s_checksum_pass(buf, len);
        } while ((dt = vem_bench_now() - t0) < 1.0);
        if (frames / dt > best_sum)
            best_sum = frames / dt;
        (void)passes;
    }
    double best_signed = 0;
    for (int run = 0; run < S_SIGNED_RUNS; run++) {
        size_t frames = 0;
        double t0 = vem_bench_now(), dt;
        do {
            frames += s_signed_pass(ra, f, key, buf, len);
        } while ((dt = vem_bench_now() - t0) < 1.0);
        if (frames / dt > best_signed)
            best_signed = frames / dt;
    }
    double samples_per_s = best_full * samples_per_pass / nframes;
    double mb_per_s = best_full * len / nframes / 1e6;
    printf("full path (reassemble + decode): %.0f frames/s, %.0f samples/s, %.1f MB/s\n", best_full,
           samples_per_s, mb_per_s);
    printf("checksum only:                   %.0f frames/s\n", best_sum);
    printf("signed path (+ SM2 verification): %.0f frames/s\n", best_signed);
    printf("frames_per_s=%.0f samples_per_s=%.0f mb_per_s=%.1f checksum_frames_per_s=%.0f "
           "signed_frames_per_s=%.0f signed_ratio=%.4f ratio=%.3f\n",
           best_full, samples_per_s, mb_per_s, best_sum, best_signed, best_signed / best_full,
           best_full / best_sum);
    vem_sm2_key_destroy(&key);
    EVP_PKEY_free(signer);
    free(f);
    vem_reasm_destroy(&ra);
    free(buf);
    return 0;
}
