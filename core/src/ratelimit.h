/* The software rate limiter of a send stream (SPEC §3 "Software rate limiter"),
 * core-internal. Pure arithmetic on times the caller supplies, so the writer thread drives
 * it with the real clock and the unit tests with a fake one.
 *
 * Times are fixed point: nanoseconds x 2^64 in a signed 128-bit integer (63 integer bits,
 * 64 fraction bits), so no step is rounded to whole nanoseconds (at 40 Gb/s a 64 KiB
 * burst lasts 13107.2 ns). Per-byte steps are computed once per rate with 64-bit-mantissa
 * precision; accumulation is then exact integer arithmetic.
 *
 * Use, per packet the writer is about to take:
 *   if (limited) {
 *       if (spci_rl_need_clock(rl) && spci_rl_gate(rl, now, &wake))  -> sleep until wake, retry
 *       ...take the packet...
 *       spci_rl_account(rl, step, packet_size);
 *   }
 * and spci_rl_resume(rl, now) when work arrives at an idle writer.
 *
 * Invariants: t_burst >= the start of the last burst; pend / pend_burst are the nominal /
 * catch-up durations of the pend_bytes accounted since the last update. Not thread-safe:
 * one writer owns it.
 */
#ifndef SPCI_RATELIMIT_H
#define SPCI_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

__extension__ typedef __int128 spci_fix;

#define SPCI_FIX_SHIFT 64
#define SPCI_FIX_ONE ((spci_fix)1 << SPCI_FIX_SHIFT)
/* Saturation bound: far beyond any real time, far below overflow when two are added. */
#define SPCI_FIX_MAX ((spci_fix)1 << 125)

static inline spci_fix spci_fix_from_ns(uint64_t ns)
{
    return (spci_fix)ns << SPCI_FIX_SHIFT;
}

/* Smallest whole nanosecond >= t (t >= 0), saturating at UINT64_MAX. */
static inline uint64_t spci_fix_ceil_ns(spci_fix t)
{
    if (t <= 0)
        return 0;
    spci_fix ns = (t + (SPCI_FIX_ONE - 1)) >> SPCI_FIX_SHIFT;
    return ns >= (spci_fix)UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

/* Duration of one byte at a rate: nominal, and at the catch-up rate (rate x ratio).
 * Both 0 for an unlimited rate. */
struct spci_rate_step {
    spci_fix nominal;
    spci_fix burst;
};

/* Computes the step for rate bytes/s (0 = unlimited) and burst_rate_ratio.
 * Errors: -EINVAL for a negative or non-finite rate or a ratio below 1 or non-finite. */
int spci_rate_step(double rate, double ratio, struct spci_rate_step *out);

static inline bool spci_rate_step_limited(const struct spci_rate_step *st)
{
    return st->nominal != 0;
}

struct spci_ratelimit {
    spci_fix t_nom;      /* when the bytes accounted so far are due at the nominal rate */
    spci_fix t_burst;    /* earliest start of the next burst (catch-up rate, reset to now) */
    spci_fix pend;       /* nominal duration of the current burst's bytes */
    spci_fix pend_burst; /* the same at the catch-up rate */
    uint64_t pend_bytes; /* bytes of the current burst */
    uint64_t burst_size;
    bool must_sleep;     /* a burst ended early: wait for t_burst before the next packet */
};

/* Starts the limiter at time now (ns). */
void spci_rl_init(struct spci_ratelimit *rl, uint64_t burst_size, uint64_t now_ns);

/* Whether spci_rl_gate needs the time before the next packet (so the hot path reads the
 * clock only once per burst). */
static inline bool spci_rl_need_clock(const struct spci_ratelimit *rl)
{
    return rl->must_sleep || rl->pend_bytes >= rl->burst_size;
}

/* Decides whether the next packet may go at time now. Ends the current burst when it has
 * reached burst_size: both targets advance by its durations and the burst time becomes
 * max(now, max(t_burst, t_nom)). Returns 0 to send now, or 1 with *wake the (exact) time
 * to sleep until; after sleeping, call again. */
int spci_rl_gate(struct spci_ratelimit *rl, uint64_t now_ns, spci_fix *wake);

/* Accounts a packet of size bytes taken at step st (a no-op for an unlimited step). */
void spci_rl_account(struct spci_ratelimit *rl, const struct spci_rate_step *st, size_t size);

/* Several writers, one rate: moves the bytes accounted in from (a writer's own limiter,
 * used only to gather them) into rl (the shared one), leaving from with none pending. */
void spci_rl_merge(struct spci_ratelimit *rl, struct spci_ratelimit *from);

/* Work arrived at an idle writer: idle time is not a deficit, so the nominal time moves
 * up to now - pend (the pending burst keeps its place). */
void spci_rl_resume(struct spci_ratelimit *rl, uint64_t now_ns);

#endif
