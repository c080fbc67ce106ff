/* session — per-vehicle terminal session state kept by a worker.
 *
 * For each VIN: last login, last seen, frame serial continuity (gaps counted: the per-vehicle
 * loss figure of HJ 1239.2), re-sends, duplicates, and clock skew between the time a frame
 * carries and the time it arrived. Re-sent (0x03) frames are deduplicated against live ones
 * (and live repeats against each other) by (collection time, serial) over a window of the
 * vehicle's most recent frames; older repeats are caught by the database's natural keys.
 *
 * Serial rules (GB 17691-2018 Annex Q / HJ 1239.3): the real-time serial counts from 1 each
 * day; a live frame whose serial jumps ahead leaves a gap of the skipped serials; a serial
 * that starts over on a new day is a reset, not a gap.
 *
 * Bounds (a peer controls which VINs it names): the table holds at most `max` sessions and
 * forgets sessions not seen for `idle_us`; both only ever take sessions whose owner's slot is
 * empty (no rule state): a slot's state is the owner's to judge and release first, so the
 * table never drops it. At the cap a new VIN takes the place of the least recently seen
 * session without state; when there is none, the frame gets no session (verdict.refused).
 * The window's key ring is allocated at a vehicle's first real-time or re-sent frame, so a
 * login costs only the entry.
 *
 * Ownership: one table per worker thread; all vehicles routed to that worker live in it. */
#ifndef VEM_SESSION_H
#define VEM_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VEM_VIN_LEN 17

#define VEM_SESSION_CMDS 9 /* by_cmd[] covers command bytes 0x00..0x08 */

typedef struct vem_sessions vem_sessions_t;

typedef struct {
    char vin[VEM_VIN_LEN + 1];
    int64_t login_at;       /* frame time of the last login, Unix seconds; 0 none */
    uint16_t login_seq;     /* its login serial */
    int64_t last_seen_us;   /* receipt time of the last frame */
    int64_t last_live_time; /* frame time of the last live real-time frame, Unix seconds */
    uint16_t last_live_seq; /* its serial */
    int64_t skew_s;         /* receipt time minus frame time of the last frame */
    uint64_t live_frames;   /* real-time frames, first copies */
    uint64_t resent_frames; /* re-sent frames, first copies */
    uint64_t duplicates;    /* copies of a frame already seen, dropped */
    uint64_t missing;       /* serials skipped by live frames */
    uint64_t logins, logouts;
    uint64_t by_cmd[VEM_SESSION_CMDS]; /* every frame received, by command byte, copies too */
} vem_session_t;

/* Frame kinds by their command byte; any other command is seen but not sequenced. */
typedef enum {
    VEM_FRAME_LOGIN = 0x01,
    VEM_FRAME_LIVE = 0x02,   /* real-time frame */
    VEM_FRAME_RESENT = 0x03, /* re-sent (补发) frame */
    VEM_FRAME_LOGOUT = 0x04,
    VEM_FRAME_OTHER = 0x05, /* time sync, alarms, activation, ... */
} vem_frame_kind_t;

typedef struct {
    bool duplicate;    /* drop it: this (time, serial) was already seen */
    uint32_t gap;      /* serials skipped just before this live frame */
    bool serial_reset; /* the day changed and the serial started over */
    bool refused;      /* a new VIN and the table full of sessions with state: not recorded */
    bool evicted;      /* a session without state was forgotten to make room for this VIN */
} vem_session_verdict_t;

/* New table remembering the last `window` (time, serial) keys per vehicle (>= 1). */
vem_sessions_t *vem_sessions_new(size_t window);

/* Bounds: at most max sessions (0: no cap), and vem_sessions_expire forgets sessions without
 * state not seen for idle_us (0: never). */
void vem_sessions_set_limits(vem_sessions_t *self, size_t max, int64_t idle_us);

/* Forgets the sessions without state whose last frame arrived before now_us - idle_us;
 * returns how many. Cheap when there is nothing to forget (least recently seen first). */
size_t vem_sessions_expire(vem_sessions_t *self, int64_t now_us);

/* Calls fn for at most limit sessions, the most recently seen first; returns how many. */
size_t vem_sessions_recent(const vem_sessions_t *self, size_t limit,
                           void (*fn)(void *arg, const vem_session_t *session), void *arg);

/* Frees the table and every session; accepts NULL; sets *self_p to NULL. */
void vem_sessions_destroy(vem_sessions_t **self_p);

/* Records one frame of vin (17 bytes) with command byte cmd and says whether it is a
 * duplicate and what gap it shows. frame_time is the time the frame carries (Unix seconds),
 * received_us its arrival. */
vem_session_verdict_t vem_sessions_observe(vem_sessions_t *self, const char *vin, uint8_t cmd,
                                           int64_t frame_time, uint16_t seq, int64_t received_us);

/* The session of vin, or NULL if it was never seen; owned by the table. */
const vem_session_t *vem_sessions_find(const vem_sessions_t *self, const char *vin);

/* The slot where the owner keeps its own state of vin (the rule state: DESIGN.md's "rule-state
 * slot in the vehicle's entry"); NULL if vin was never seen. The slot starts NULL. */
void **vem_sessions_state(vem_sessions_t *self, const char *vin);

/* The same slot, creating an empty session for vin when it was never seen (rule state
 * restored from a checkpoint, before the vehicle's next frame). It always makes the session:
 * at the cap with no session without state to forget, the table grows past it, since the
 * caller holds state for the vehicle that must not be lost. */
void **vem_sessions_state_new(vem_sessions_t *self, const char *vin);

/* The same slot, creating the session when there is room: at the cap, a session without state
 * is forgotten for it; NULL when every session holds state. For state a peer asks for (a
 * station's VIN the registry does not know), which must not push the table past its cap.
 * *evicted tells whether a session was forgotten for it. */
void **vem_sessions_state_try(vem_sessions_t *self, const char *vin, bool *evicted);

/* How the table frees a slot's state when it is destroyed (NULL: it does not). */
void vem_sessions_set_state_free(vem_sessions_t *self, void (*state_free)(void *state));

/* Number of vehicles in the table. */
size_t vem_sessions_count(const vem_sessions_t *self);

/* Calls fn for every session (order unspecified). */
void vem_sessions_each(const vem_sessions_t *self,
                       void (*fn)(void *arg, const vem_session_t *session), void *arg);

/* Stable 64-bit hash of a 17-byte VIN (FNV-1a), for routing vehicles to workers. */
uint64_t vem_vin_hash(const char *vin);

/* Stable 64-bit hash of a NUL-terminated plate (FNV-1a), for routing roadside readings of
 * vehicles the registry does not know. */
uint64_t vem_plate_hash(const char *plate);

#endif
