/* vemctl decode — remote-OBD frames to JSON, one object per line.
 *
 *   vemctl decode [--pretty] [--max-frame N]          one hex frame per line on stdin
 *   vemctl decode --raw [--pretty] [--max-frame N]    a binary byte stream on stdin
 *
 * Each frame prints as a FIELDS.md object, each rejected frame (and, with --raw, each run of
 * skipped bytes) as {"error": CLASS, "detail": ..., "offset": N}; decoding goes on. Exit 0
 * when every frame decoded, 1 when anything was rejected, 2 on a usage error. The parsing is
 * in parsers/ (reasm, hj1239, frame_json); this file only reads, prints and counts. */
#include "frame_json.h"
#include "hj1239.h"
#include "reasm.h"
#include "vemctl.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t json_flags;
    vem_hj1239_frame_t *frame; /* big: one, on the heap */
    unsigned long frames, rejected;
} s_run_t;

static void s_usage(FILE *out)
{
    fprintf(out, "usage: vemctl decode [--raw] [--pretty] [--max-frame N]\n"
                 "  reads one hex frame per line on stdin (or, with --raw, a binary stream)\n"
                 "  and prints one JSON object per frame or rejected frame.\n"
                 "  exit 0: all decoded, 1: something rejected, 2: usage error\n");
}

static void s_print(s_run_t *run, json_t *obj)
{
    json_dumpf(obj, stdout, run->json_flags);
    fputc('\n', stdout);
    json_decref(obj);
}

/* Decodes one whole frame and prints its object or its error. */
static void s_decode_one(s_run_t *run, const uint8_t *p, size_t n, unsigned flags,
                         uint64_t stream_off)
{
    vem_hj1239_error_t err;
    if (vem_hj1239_decode(p, n, flags, run->frame, &err) == VEM_HJ1239_OK) {
        run->frames++;
        s_print(run, vem_frame_json_new(run->frame));
        return;
    }
    run->rejected++;
    err.offset += (size_t)stream_off;
    s_print(run, vem_frame_json_error(&err, run->frame));
}

static int s_nibble(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Hex digits of line (whitespace ignored) into out; byte count, or -1 when not hex. */
static long s_unhex(const char *line, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (const char *s = line; *s; s++) {
        if (isspace((unsigned char)*s))
            continue;
        int v = s_nibble((unsigned char)*s);
        if (v < 0 || (hi < 0 && n == cap))
            return -1;
        if (hi < 0) {
            hi = v;
        } else {
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return hi < 0 ? (long)n : -1;
}

static int s_run_hex(s_run_t *run)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    unsigned long lineno = 0;
    uint8_t *bytes = malloc(VEM_HJ1239_MAX_FRAME + 1);
    if (!bytes)
        abort();
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        bool blank = true;
        for (ssize_t i = 0; i < got && blank; i++)
            blank = isspace((unsigned char)line[i]) != 0;
        if (blank)
            continue;
        long n = s_unhex(line, bytes, VEM_HJ1239_MAX_FRAME + 1);
        if (n < 0) {
            fprintf(stderr, "vemctl decode: line %lu is not hex\n", lineno);
            run->rejected++;
            continue;
        }
        s_decode_one(run, bytes, (size_t)n, 0, 0);
    }
    free(line);
    free(bytes);
    return 0;
}

static void s_drain(s_run_t *run, vem_reasm_t *ra)
{
    vem_reasm_event_t ev;
    while (vem_reasm_next(ra, &ev) != VEM_REASM_NEED_MORE) {
        if (ev.kind == VEM_REASM_FRAME) {
            s_decode_one(run, ev.data, ev.len, VEM_HJ1239_TRUSTED_BCC, ev.offset);
            continue;
        }
        run->rejected++;
        json_t *o = json_object();
        json_object_set_new(o, "error", json_string(vem_hj1239_status_name(ev.error)));
        json_object_set_new(o, "detail", json_string(ev.detail));
        json_object_set_new(o, "offset", json_integer((json_int_t)ev.offset));
        json_object_set_new(o, "skipped", json_integer((json_int_t)ev.skipped));
        s_print(run, o);
    }
}

static int s_run_raw(s_run_t *run, size_t max_frame)
{
    vem_reasm_t *ra = vem_reasm_new(max_frame);
    uint8_t *chunk = malloc(65536);
    if (!ra || !chunk)
        abort();
    size_t n;
    while ((n = fread(chunk, 1, 65536, stdin)) > 0) {
        vem_reasm_feed(ra, chunk, n);
        s_drain(run, ra);
    }
    int rc = ferror(stdin) ? -1 : 0;
    vem_reasm_end(ra);
    s_drain(run, ra);
    vem_reasm_destroy(&ra);
    free(chunk);
    return rc;
}

int vemctl_decode_main(int argc, char **argv)
{
    bool raw = false, pretty = false;
    size_t max_frame = VEM_HJ1239_MAX_FRAME;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--raw") == 0) {
            raw = true;
        } else if (strcmp(argv[i], "--pretty") == 0) {
            pretty = true;
        } else if (strcmp(argv[i], "--max-frame") == 0 && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || v < VEM_HJ1239_MIN_FRAME || v > VEM_HJ1239_MAX_FRAME) {
                fprintf(stderr, "vemctl decode: --max-frame wants 25..65560\n");
                return 2;
            }
            max_frame = v;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            s_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "vemctl decode: unknown argument '%s'\n", argv[i]);
            s_usage(stderr);
            return 2;
        }
    }
    s_run_t run = {.json_flags =
                       VEM_FRAME_JSON_DUMP_FLAGS | (pretty ? JSON_INDENT(2) : JSON_COMPACT)};
    run.frame = malloc(sizeof *run.frame);
    if (!run.frame)
        abort();
    int rc = raw ? s_run_raw(&run, max_frame) : s_run_hex(&run);
    free(run.frame);
    fflush(stdout);
    if (rc < 0) {
        fprintf(stderr, "vemctl decode: read error on stdin\n");
        return 1;
    }
    return run.rejected ? 1 : 0;
}
