/* bench-rules — what the rules engine costs a worker, and what it holds per driving truck.
 *
 *   bench-rules [TRUCKS [WARM_MINUTES [CHUNKS]]]        (defaults 10000, 30, 5)
 *
 * A simulated fleet (tools/sim_fleet.h; one truck in 50 with each misbehaviour) with registry
 * figures for every truck: the simulator's reference torque and rated power, and a WHTC
 * reference work of 0.09 h x rated power (a heavy engine's WHTC averages about 18 % of rated
 * power over its 30 minutes). Every 10 s each truck sends an HJ 1239 real-time frame of ten
 * 1 Hz samples (tools/sim_frames.h), with an OBD block every 60th frame; each truck logs in
 * first.
 *
 * Warm-up, untimed: WARM_MINUTES of driving, decoded and judged, so every truck is mid-trip
 * with its windows in full swing. Then CHUNKS chunks of S_ROUNDS rounds (one frame per truck
 * each): a chunk's frames are encoded up front, then timed on one core
 *   (a) decode alone, best of three passes;
 *   (b) decode + vem_rules_on_frame, once (the rules must see each sample once).
 * Memory at the end: the states' own count (vem_rules_vehicle_bytes) and malloc's in-use bytes
 * (mallinfo2) grown since before the first state was made, per truck.
 * The last line holds the key=value figures; targets: ratio >= 0.3, bytes_per_vehicle <= 64 KiB.
 *
 * BENCH_RULES_OFF=rule,rule,... switches rules off (vem_rules_name), to see what each costs.
 *
 * BENCH_RULES_AHEAD=1 judges each frame with its vehicle's state asked for two frames ahead
 * (vem_rules_prefetch_state) and its window lines one ahead (vem_rules_prefetch_frame), as a
 * worker with a queue could. BENCH_RULES_PERF=FIFO,ACK writes enable/disable around the timed
 * rules passes and waits for perf's ack, for `perf record --control fifo:FIFO,ACK -D -1`: a
 * profile of those passes alone.
 *
 * What the figures mean (2-core shared AMD EPYC VM, no hardware counters; medians of 3):
 *  - 10,000 mid-trip trucks, about 370 MB of rule state: ratio 0.14-0.16. A profile of the
 *    timed decode + rules passes alone: decode 25 %, vem_rules_window_prefetch 31 % (all of
 *    it in the prefetch instructions: they wait for a free miss buffer or a page walk),
 *    vem_rules_on_frame 26 %, vem_rules_window_add 8 %, vem_rules_rsd_obd 4 %. A frame
 *    touches about 21 lines in 5 distinct pages: 12 of the vehicle's state, 8 of the window
 *    ring (the head, where windows end, and the tail, where samples go; 20 bytes a sample),
 *    2 of the kept windows, 1 of the fusion history.
 *  - Without the prefetches: 0.09-0.14 (median 0.125) against 0.15-0.18 with them. Asking two
 * frames ahead (BENCH_RULES_AHEAD): no change, so waiting is not the limit; the number of lines and
 *    pages in flight is. Huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, 370 MB in
 *    AnonHugePages; deploy/vemd.service sets it): 0.149 -> 0.186 with the machine quiet
 *    (0.142 -> 0.157 under load), the prefetch share 31 % -> 22 %.
 *  - The NOx window switched off (BENCH_RULES_OFF=obd.nox_window, 2.6 KB a truck, 26 MB):
 *    0.166. 100 trucks, all state in the caches: 0.20-0.29 (median 0.26): even then the
 *    per-sample rules cost about 3 decodes of instructions.
 *  - Memory alone, the same pattern without the rules (a 40-line loop: 10,000 buffers of
 *    37 KB, 20 lines in 4 places of each per frame, prefetched, read and written): 230 ns a
 *    frame, 167 ns in huge pages; 10 lines in 2 places: 108 ns (76 in huge pages). A decode
 *    is about 130 ns a frame, and 0.3 allows the rules 2.3 decodes, about 300 ns a frame.
 *  So 0.3 needs both fewer instructions per sample (the six span rules and the sample's
 *  values, read once per sample from the block) and fewer lines per frame (a ring of
 *  increments in floats would halve its 8 lines, but changes the sums' rounding, so verdicts
 *  at a limit could change: not done).
 *
 * Then (verdicts and checkpoint format unchanged): the vehicle's hot members first, in one
 * page; the window's running figures in registers across a frame; the fusion history and the
 * kept windows staged in the vehicle's own lines (their pages touched one frame in three and
 * one in two). Alternating runs against the build before, load average 0.2-1.0, medians of 5
 * (of 3 for the others): 10,000 trucks 0.163 -> 0.165, i.e. no change beyond the noise; huge
 * pages 0.201 -> 0.206; 20 trucks, all in the caches, 0.297 -> 0.309. Where the time still
 * goes at 10,000 trucks: 376 MB of state, 12 x the L3, so every line a frame touches comes
 * from DRAM, and the ~18 left are what costs. The NOx window's memory dominates:
 * BENCH_RULES_OFF=obd.nox_window gives 0.22-0.28 (its ring and kept windows gone, the rest
 * nearly fits the L3), as does a 1,000-truck fleet (0.22-0.23). Its 8 ring lines a frame are
 * fixed by the checkpoint: a compact slot (the sample's raw inputs in 13 bytes, with the
 * head's sums carried as running doubles, the same additions in the same order, so bit for
 * bit the same sums) needs a new format, and check_rules_ckpt pins version 1 (a version 2
 * must be refused), while prefix sums cannot be turned back into raw inputs to convert an old
 * checkpoint. Even with it, 0.3 at 10,000 trucks needs a frame's state in about 10 lines in
 * 2 pages, not ~18 in 4.
 *
 * Session 7, where the 62.8 ns a sample go at 10,000 trucks (decode 13.6 ns, so 0.3 allows the
 * rules 31.7 ns), from BENCH_RULES_OFF, two runs each, quiet machine:
 *  - every rule off, only reading the samples' values and routing them to their trip (2 KB a
 *    truck): 0.386-0.416, 19 ns a sample; with 20 trucks, all in the caches, 0.491: reading the
 *    ten fields a sample the rules use already costs about one decode;
 *  - the NOx window alone (every other rule off): 0.209-0.215;
 *  - every rule but the NOx window: 0.266;
 *  - everything: 0.165-0.178.
 *  So without the window the rest is already over the 31.7 ns. Scratch experiments, none kept:
 *  reading no ring slot at the head at all (windows ended from the tail slot, which changes the
 *  work done, so only a hint): 0.166-0.180;
 *  writing the ring with non-temporal stores: 0.135-0.165; vehicle structs not page-aligned,
 *  to spread their hot lines over more cache sets: 0.154-0.174. None moves the figure beyond
 *  the noise: what costs is the number of values read and judged per sample and the state
 *  lines coming from DRAM, not any one access.
 *
 * Session 8: the per-sample rules on raw values (each threshold turned into a raw value once
 * per configuration, a value converted to its unit only where a rule needs the number, the
 * NOx window's inputs converted while the state's lines come): the same verdicts, and no
 * change in the figure (10,000 trucks 0.171 against 0.184 in the same run, 20 trucks 0.29-0.31
 * both, a shared machine), so converting the values is not what costs either; not kept. The
 * figure on a quiet machine after this session's rule changes (roadside chains and MIL runs by
 * time, the receipt pause): 0.155-0.181, against 0.13-0.17 for the build before, alternating.
 *
 * Session 9, quiet machine: 0.190 and 0.194 (huge pages 0.194 and 0.206). Is the ceiling
 * flattered by frames still in the caches from the pass before? No: a decode of the same chunk
 * run once right after the rules pass, its frames evicted by the rules' state, took 13.5-14.0
 * ns a sample against 13.5-14.5 for the three passes timed (a chunk is 34 MB of frames, so they
 * stream from memory either way); the rules cost 57-65 ns a sample of the 75.
 *
 * Session 10: the fusion history keeps each second's stored key (4 bytes a second, not 2, and
 * a stage of 15 seconds in the same line, not 30), so the fusion notice names the obd_samples
 * row: 38,904 bytes a truck (largest 63,324), and 0.162-0.180 (median 0.178 of 5) against
 * 0.168-0.191 (median 0.185) for the build before, alternating on a quiet machine.
 *
 * Session 13, quiet machine, the same run for each pair (10,000 trucks | 20 trucks, 30 min,
 * 2000 chunks): everything 0.184 | 0.291; BENCH_RULES_OFF=obd.nox_window 0.275 | 0.358;
 * fusion.obd_mismatch off 0.205 | 0.317; obd.tamper off 0.194 | 0.314. A floor, then: with no
 * NOx window at all the 10,000-truck figure is 0.275, below 0.3, so no design of the window
 * alone reaches it; in the caches the rest already costs 2.79 decodes of the 3.33 that 0.3
 * allows, leaving 0.54 decode (about 12 ns a sample) for every line from DRAM and the whole
 * window. Warm-up of 60 and 120 minutes (kept windows past their filling phase): 0.185, 0.182,
 * no change.
 *
 * Session 14 (roadside replay fixes only; the per-sample path unchanged), quiet machine, two
 * runs each: 10,000 trucks 0.178, 0.179; 20 trucks 0.281, 0.281 (decode alone 49-50 M samples
 * a second in this build of the day, 46-47 M before).
 *
 * Session 15 (rule fixes from a review: obd.nox_high for samples the window cannot use, a
 * sliding SCR window of whole minutes with its ring of 24 bytes a minute, the DTC set's bound),
 * quiet machine, two runs each: 10,000 trucks 0.173, 0.173 (39,624 bytes a truck, largest
 * 64,044: the SCR ring's 720); 20 trucks 0.272, 0.272.
 *
 * Session 16 (no change to the per-sample path), quiet machine: 10,000 trucks 0.171, 0.179,
 * 0.177; huge pages 0.189; 20 trucks 0.277, 0.274.
 *
 * Session 18: the window's ring of 12-byte slots (each sample's work and NOx as floats, the
 * sums before the head kept as doubles; checkpoint version 11), what the notes above leave
 * undone. Alternating with the build before on a quiet machine: 10,000 trucks 0.179, 0.175 ->
 * 0.185, 0.183; huge pages 0.190, 0.179 -> 0.196, 0.195; 20 trucks 0.277, 0.273 -> 0.277,
 * 0.275. A truck's state 39,624 -> 26,082 bytes (largest 64,044 -> 50,356). So the ring's
 * lines were worth about 4 % at 10,000 trucks and nothing in the caches, as the analysis
 * above expects: the per-sample rules' instructions and the vehicle's own lines are what
 * stand between the engine and 0.3. BENCH_RULES_OFF, two runs each: every rule off 0.351,
 * 0.349 (0.39-0.42 in session 7: the rules added since read more of each sample); the NOx
 * window alone 0.231, 0.228; every rule but the window 0.247, 0.233. In the caches (20 trucks,
 * 2000 chunks) every rule off gives 0.448: reading a sample's fields and routing it to its
 * trip cost 1.2 decodes of the 2.3 that 0.3 allows the rules. A profile of the rules passes
 * alone (BENCH_RULES_PERF with perf's ack, 20 trucks): vem_rules_on_frame 40 %, the decode
 * 24 %, vem_rules_window_add 10.5 %, the fusion history (vem_rules_rsd_settle, _obd) 5.7 %,
 * vem_rules_window_prefetch 2.8 %; inside vem_rules_on_frame no line above 4 % but the
 * fields' conversion (s_get, 12 % of it).
 *
 * Session 21 (a track's gaps kept, checkpoint version 13; the per-sample path unchanged but for
 * a call at a gap), quiet machine, alternating with the build before: 10,000 trucks
 * 0.163-0.208 (median 0.196) against 0.184-0.221 (median 0.200); 20 trucks in the caches
 * 0.313-0.332 against 0.306-0.345; no change beyond the noise. This machine's caches give
 * 0.31-0.34 where earlier machines of the kind gave 0.27-0.30 (decode 82-84 M samples a
 * second). Asking for each frame's lines two frames ahead with huge pages
 * (BENCH_RULES_AHEAD=1 GLIBC_TUNABLES=glibc.malloc.hugetlb=1): 0.200-0.210 against 0.184-0.198
 * plain and 0.184-0.186 with huge pages alone. So at 10,000 trucks the rules cost about 4.1
 * decodes a sample, of which the instructions are about 2.1 (the caches' figure) and the state's
 * lines from DRAM about 2; 0.3 allows 2.3 in all.
 *
 * Session 26 (no change to the rules), quiet machine: 10,000 trucks 0.186-0.209 in five runs
 * (decode 87-92 M samples a second); 20 trucks 0.310. BENCH_RULES_OFF: every rule off 0.417,
 * the NOx window off 0.247. A profile of the rules passes with every rule off: decode 37 %,
 * the frame's samples read into values (s_prepare) 21 %, routing them (s_data) 23 %, the
 * state's lines (vem_rules_on_frame's prefetch) 12 %: reading and routing alone cost 1.4
 * decodes of the 2.3 that 0.3 allows, at 10,000 trucks as in the caches. */
#include "bench_util.h"
#include "hj1239.h"
#include "rules.h"
#include "sim_fleet.h"
#include "sim_frames.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { S_SAMPLES = 10, S_ROUNDS = 6, S_OBD_EVERY = 60, S_FRAME_CAP = 2048 };

#define S_T0 1709596800LL /* 2024-03-05 08:00:00 +08:00 */

typedef struct {
    vem_sim_truck_t truck;
    vem_rules_vehicle_t *rules;
    uint16_t seq;
    unsigned frames;
} s_truck_t;

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    size_t *off;   /* frame k is buf[off[k] .. off[k + 1]) */
    unsigned *who; /* its truck */
    size_t n, ncap;
} s_chunk_t;

static unsigned long s_verdicts[VEM_RULE_COUNT];

static void s_count(void *arg, const vem_violation_t *v)
{
    (void)arg;
    s_verdicts[v->rule]++;
}

static void s_chunk_add(s_chunk_t *c, const uint8_t *frame, size_t len, unsigned who)
{
    if (c->len + len > c->cap) {
        c->cap = (c->cap + len) * 2;
        c->buf = realloc(c->buf, c->cap);
    }
    if (c->n + 2 > c->ncap) {
        c->ncap = (c->ncap + 2) * 2;
        c->off = realloc(c->off, c->ncap * sizeof *c->off);
        c->who = realloc(c->who, c->ncap * sizeof *c->who);
    }
    if (!c->buf || !c->off || !c->who)
        abort();
    memcpy(c->buf + c->len, frame, len);
    c->off[c->n] = c->len;
    c->who[c->n++] = who;
    c->len += len;
    c->off[c->n] = c->len;
}

/* One frame of each truck for the 10 s starting at t (their login first when t is the start). */
static void s_round(s_truck_t *fleet, unsigned n, int64_t t, vem_hj1239_frame_t *scratch,
                    s_chunk_t *out)
{
    uint8_t frame[S_FRAME_CAP];
    vem_sim_sample_t samples[S_SAMPLES];
    for (unsigned i = 0; i < n; i++) {
        s_truck_t *tr = &fleet[i];
        size_t len;
        if (tr->frames == 0) {
            len = vem_sim_login(scratch, tr->truck.vin, t, 1, frame, sizeof frame);
            s_chunk_add(out, frame, len, i);
        }
        for (int k = 0; k < S_SAMPLES; k++)
            samples[k] = *vem_sim_truck_step(&tr->truck);
        tr->seq = tr->seq % 65531 + 1;
        len = vem_sim_data(scratch, &tr->truck, samples, S_SAMPLES, t, tr->seq, false, true,
                           tr->frames % S_OBD_EVERY == 0, frame, sizeof frame);
        if (len == 0)
            abort();
        s_chunk_add(out, frame, len, i);
        tr->frames++;
    }
}

static size_t s_decode_pass(const s_chunk_t *c, vem_hj1239_frame_t *f)
{
    size_t samples = 0;
    for (size_t k = 0; k < c->n; k++) {
        if (vem_hj1239_decode(c->buf + c->off[k], c->off[k + 1] - c->off[k], VEM_HJ1239_TRUSTED_BCC,
                              f, NULL) != VEM_HJ1239_OK)
            abort();
        for (size_t b = 0; b < f->nblocks; b++)
            samples += f->blocks[b].type == VEM_HJ1239_BLOCK_STREAM;
    }
    return samples;
}

static size_t s_rules_pass(const s_chunk_t *c, vem_hj1239_frame_t *f, s_truck_t *fleet,
                           const vem_rules_config_t *cfg, uint64_t *seq)
{
    size_t samples = 0;
    for (size_t k = 0; k < c->n; k++) {
        if (vem_hj1239_decode(c->buf + c->off[k], c->off[k + 1] - c->off[k], VEM_HJ1239_TRUSTED_BCC,
                              f, NULL) != VEM_HJ1239_OK)
            abort();
        for (size_t b = 0; b < f->nblocks; b++)
            samples += f->blocks[b].type == VEM_HJ1239_BLOCK_STREAM;
        vem_rules_on_frame(fleet[c->who[k]].rules, cfg, f, f->time * 1000000 + 500000, 0, ++*seq,
                           s_count, NULL);
    }
    return samples;
}

/* The same, the way a worker with a queue of inputs can: frames decoded two ahead of the one
 * judged, each vehicle's state asked for two frames ahead and its window lines one ahead. */
static size_t s_rules_pass_ahead(const s_chunk_t *c, vem_hj1239_frame_t *f3, s_truck_t *fleet,
                                 const vem_rules_config_t *cfg, uint64_t *seq)
{
    size_t samples = 0;
    for (size_t k = 0; k < c->n + 2; k++) {
        if (k < c->n) {
            vem_hj1239_frame_t *f = &f3[k % 3];
            if (vem_hj1239_decode(c->buf + c->off[k], c->off[k + 1] - c->off[k],
                                  VEM_HJ1239_TRUSTED_BCC, f, NULL) != VEM_HJ1239_OK)
                abort();
            for (size_t b = 0; b < f->nblocks; b++)
                samples += f->blocks[b].type == VEM_HJ1239_BLOCK_STREAM;
            vem_rules_prefetch_state(fleet[c->who[k]].rules);
        }
        if (k >= 1 && k - 1 < c->n)
            vem_rules_prefetch_frame(fleet[c->who[k - 1]].rules, &f3[(k - 1) % 3]);
        if (k >= 2) {
            const vem_hj1239_frame_t *f = &f3[(k - 2) % 3];
            vem_rules_on_frame(fleet[c->who[k - 2]].rules, cfg, f, f->time * 1000000 + 500000, 0,
                               ++*seq, s_count, NULL);
        }
    }
    return samples;
}

/* perf record --control fifo:CTL,ACK -D -1 with BENCH_RULES_PERF=CTL,ACK: only the rules
 * passes. perf acts on a command a while after it is written; waiting for its "ack" keeps the
 * encoding of the next chunk out of the profile. */
static void s_perf(const char *cmd)
{
    const char *env = getenv("BENCH_RULES_PERF");
    if (!env)
        return;
    char ctl[512];
    snprintf(ctl, sizeof ctl, "%s", env);
    char *ack = strchr(ctl, ',');
    if (ack)
        *ack++ = '\0';
    FILE *f = fopen(ctl, "w");
    if (f) {
        fputs(cmd, f);
        fclose(f);
    }
    FILE *a = ack ? fopen(ack, "r") : NULL;
    if (a) {
        char line[16];
        if (!fgets(line, sizeof line, a))
            line[0] = '\0';
        fclose(a);
    }
}

static void s_chunk_reset(s_chunk_t *c)
{
    c->len = c->n = 0;
}

int main(int argc, char **argv)
{
    unsigned trucks = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 10000;
    unsigned warm_min = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 30;
    unsigned chunks = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 5;
    if (trucks == 0)
        trucks = 1;
    static const uint32_t misbehave[] = {VEM_SIM_MIL_ON, VEM_SIM_UREA_EMPTY, VEM_SIM_SCR_REMOVED,
                                         VEM_SIM_FROZEN_NOX};
    s_truck_t *fleet = calloc(trucks, sizeof *fleet);
    vem_hj1239_frame_t *scratch = malloc(sizeof *scratch), *f = malloc(sizeof *f);
    vem_hj1239_frame_t *f3 = malloc(3 * sizeof *f3);
    if (!fleet || !scratch || !f)
        abort();
    for (unsigned i = 0; i < trucks; i++)
        vem_sim_truck_init(&fleet[i].truck, 17691, i, 116.4, 39.9,
                           i % 50 < 4 ? misbehave[i % 50] : 0);
    vem_rules_config_t cfg;
    vem_rules_config_defaults(&cfg);
    if (getenv("BENCH_RULES_OFF")) {
        char *list = strdup(getenv("BENCH_RULES_OFF"));
        for (char *n = strtok(list, ","); n; n = strtok(NULL, ",")) {
            vem_rule_t r;
            if (vem_rules_lookup(n, &r))
                cfg.enabled[r] = false;
        }
        free(list);
    }

    /* the frame buffer of one chunk, sized up front so malloc's count holds only rule state */
    s_chunk_t chunk = {0};
    chunk.cap = (size_t)trucks * (S_ROUNDS + 1) * 800;
    chunk.ncap = (size_t)trucks * (S_ROUNDS + 1) + 2;
    chunk.buf = malloc(chunk.cap);
    chunk.off = malloc(chunk.ncap * sizeof *chunk.off);
    chunk.who = malloc(chunk.ncap * sizeof *chunk.who);
    if (!chunk.buf || !chunk.off || !chunk.who)
        abort();
    struct mallinfo2 before = mallinfo2();
    for (unsigned i = 0; i < trucks; i++) {
        const vem_sim_truck_t *t = &fleet[i].truck;
        vem_rules_engine_facts_t facts = {t->ref_torque_nm, t->rated_power_kw,
                                          0.09 * t->rated_power_kw, VEM_FUEL_DIESEL};
        fleet[i].rules = vem_rules_vehicle_new(t->vin, NULL, &facts);
        if (!fleet[i].rules)
            abort();
    }

    /* warm-up */
    uint64_t seq = 0;
    int64_t t = S_T0;
    double w0 = vem_bench_now();
    for (unsigned r = 0; r < warm_min * 6; r++, t += S_SAMPLES) {
        s_chunk_reset(&chunk);
        s_round(fleet, trucks, t, scratch, &chunk);
        s_rules_pass(&chunk, f, fleet, &cfg, &seq);
    }
    printf("fleet: %u trucks, warm-up %u min driven in %.1f s\n", trucks, warm_min,
           vem_bench_now() - w0);

    /* timed chunks */
    double decode_s = 0, rules_s = 0;
    size_t decode_samples = 0, rules_samples = 0, frames = 0, bytes = 0;
    for (unsigned c = 0; c < chunks; c++) {
        s_chunk_reset(&chunk);
        for (int r = 0; r < S_ROUNDS; r++, t += S_SAMPLES)
            s_round(fleet, trucks, t, scratch, &chunk);
        double best = 0;
        size_t n = 0;
        for (int pass = 0; pass < 3; pass++) {
            double t0 = vem_bench_now();
            n = s_decode_pass(&chunk, f);
            double dt = vem_bench_now() - t0;
            if (pass == 0 || dt < best)
                best = dt;
        }
        decode_s += best;
        decode_samples += n;
        s_perf("enable\n");
        double t0 = vem_bench_now();
        rules_samples = rules_samples + (getenv("BENCH_RULES_AHEAD")
                                             ? s_rules_pass_ahead(&chunk, f3, fleet, &cfg, &seq)
                                             : s_rules_pass(&chunk, f, fleet, &cfg, &seq));
        rules_s += vem_bench_now() - t0;
        s_perf("disable\n");
        frames += chunk.n;
        bytes += chunk.len;
    }

    struct mallinfo2 after = mallinfo2();
    size_t own = 0, most = 0;
    for (unsigned i = 0; i < trucks; i++) {
        size_t b = vem_rules_vehicle_bytes(fleet[i].rules);
        own += b;
        most = b > most ? b : most;
    }
    double per_vehicle = (double)own / trucks;
    double malloc_per_vehicle = ((double)after.uordblks - (double)before.uordblks) / trucks;
    double decode_rate = decode_samples / decode_s, rules_rate = rules_samples / rules_s;
    printf("timed: %zu frames, %zu samples, %.1f MB\n", frames, rules_samples, bytes / 1e6);
    printf("decode alone:   %.0f samples/s (%.1f ns a sample)\n", decode_rate, 1e9 / decode_rate);
    printf("decode + rules: %.0f samples/s (%.1f ns a sample, rules %.1f ns)\n", rules_rate,
           1e9 / rules_rate, 1e9 / rules_rate - 1e9 / decode_rate);
    printf("state per truck mid-trip: %.0f bytes (largest %zu), malloc in use %.0f bytes\n",
           per_vehicle, most, malloc_per_vehicle);
    printf("verdicts:");
    for (unsigned r = 0; r < VEM_RULE_COUNT; r++)
        if (s_verdicts[r])
            printf(" %s=%lu", vem_rules_name((vem_rule_t)r), s_verdicts[r]);
    printf("\n");
    printf("trucks=%u samples_per_s=%.0f decode_samples_per_s=%.0f bytes_per_vehicle=%.0f "
           "malloc_bytes_per_vehicle=%.0f max_bytes_per_vehicle=%zu ratio=%.3f\n",
           trucks, rules_rate, decode_rate, per_vehicle, malloc_per_vehicle, most,
           rules_rate / decode_rate);

    for (unsigned i = 0; i < trucks; i++)
        vem_rules_vehicle_destroy(&fleet[i].rules);
    free(chunk.buf);
    free(chunk.off);
    free(chunk.who);
    free(fleet);
    free(scratch);
    free(f);
    return 0;
}
