/* The software rate limiter (core/src/ratelimit.c, white-box) under a fake clock: the
 * exact schedule over 10^6 packets, burst sizes, catch-up bounded by ratio x rate, idle
 * time not caught up, per-heap steps, and bad rates. Time only moves when the simulation
 * says so: sending is instantaneous unless a test injects a stall. */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

#include "ratelimit.h"
#include "testutil.h"

__extension__ typedef unsigned __int128 u128;

#define T0 1000000000000ull /* an arbitrary start time, ns */

/* The simulated writer: a fake clock and the limiter. */
struct sim {
    struct spci_ratelimit rl;
    uint64_t now;
    size_t n_wakes;
    spci_fix last_wake;
    uint64_t burst_start;   /* clock when the current burst's first packet went */
    uint64_t burst_bytes;   /* bytes of the current burst */
};

/* Sends one packet of size bytes at step st: waits as the limiter says (the clock jumps
 * to each wake time, rounded up as the writer rounds it), then accounts the packet.
 * on_burst, if set, is told about each finished burst (start time and bytes). */
typedef void (*burst_fn)(void *ctx, uint64_t start, uint64_t bytes);

static void sim_send(struct sim *s, const struct spci_rate_step *st, size_t size, burst_fn on_burst,
                     void *ctx)
{
    if (spci_rate_step_limited(st)) {
        spci_fix wake;
        bool new_burst = false;
        while (spci_rl_need_clock(&s->rl)) {
            bool ended = s->rl.pend_bytes >= s->rl.burst_size;
            if (ended)
                new_burst = true;
            if (!spci_rl_gate(&s->rl, s->now, &wake))
                break;
            s->n_wakes++;
            s->last_wake = wake;
            s->now = spci_fix_ceil_ns(wake);
        }
        if (new_burst) {
            if (on_burst)
                on_burst(ctx, s->burst_start, s->burst_bytes);
            s->burst_bytes = 0;
        }
        if (s->burst_bytes == 0)
            s->burst_start = s->now;
        s->burst_bytes += size;
    }
    spci_rl_account(&s->rl, st, size);
}

static void step_for(double rate, double ratio, struct spci_rate_step *st)
{
    cr_assert_eq(spci_rate_step(rate, ratio, st), 0);
}

/* |t - (T0 + bytes * p / q)| in ns, computed exactly: t * q vs (T0 * q + bytes * p) * 2^64. */
static long double err_ns(spci_fix t, uint64_t bytes, uint64_t p, uint64_t q)
{
    u128 lhs = (u128)t * q;
    u128 rhs = ((u128)T0 * q + (u128)bytes * p) << 64;
    u128 d = lhs > rhs ? lhs - rhs : rhs - lhs;
    return (long double)d / (long double)q / 18446744073709551616.0L;
}

struct sched_case {
    double rate;    /* bytes/s */
    uint64_t p, q;  /* 1e9 / rate = p / q ns per byte, exactly */
    size_t packet;
    uint64_t burst;
};

/* 10^6 packets back to back: every wake time equals T0 + (bytes accounted) x 1e9/rate
 * within 1e-9 ns, and the wakes happen once per burst. */
static void check_schedule(const struct sched_case *c)
{
    struct spci_rate_step st;
    step_for(c->rate, 1.05, &st);
    struct sim s = {.now = T0};
    spci_rl_init(&s.rl, c->burst, T0);
    const size_t n = 1000000;
    uint64_t bytes = 0, per_burst = (c->burst + c->packet - 1) / c->packet * c->packet;
    size_t wakes = 0;
    long double worst = 0;
    for (size_t i = 0; i < n; i++) {
        size_t before = s.n_wakes;
        sim_send(&s, &st, c->packet, NULL, NULL);
        if (s.n_wakes != before) {
            wakes++;
            cr_assert_eq(s.n_wakes, before + 1, "one wake per burst");
            cr_assert_eq(bytes % per_burst, 0, "wake after %llu bytes, not a burst boundary",
                         (unsigned long long)bytes);
            long double e = err_ns(s.last_wake, bytes, c->p, c->q);
            if (e > worst)
                worst = e;
        }
        bytes += c->packet;
    }
    cr_assert_eq(wakes, (n * c->packet - 1) / per_burst, "rate %g: %zu wakes", c->rate, wakes);
    cr_assert(worst <= 1e-9L, "rate %g: schedule off by %Lg ns", c->rate, worst);
    /* And the clock itself (whole ns) is never more than 1 ns late. */
    long double total = (long double)T0 + (long double)(wakes * per_burst) * c->p / c->q;
    cr_assert(fabsl((long double)s.now - total) <= 1.0L, "clock %llu vs %Lf",
              (unsigned long long)s.now, total);
}

Test(ratelimit, exact_schedule_40gbps_64k_bursts)
{
    /* The SPEC example: 13107.2 ns per 64 KiB burst; integer-ns steps would drift by
     * 0.2 ns per burst (25 µs over this run). */
    check_schedule(&(struct sched_case){5e9, 1, 5, 8192, 65536});
}

Test(ratelimit, exact_schedule_third_of_a_ns)
{
    check_schedule(&(struct sched_case){3e9, 1, 3, 1472, 65536});
}

Test(ratelimit, exact_schedule_1gbps)
{
    check_schedule(&(struct sched_case){125e6, 8, 1, 1472, 65536});
}

Test(ratelimit, exact_schedule_10gbps_small_bursts)
{
    check_schedule(&(struct sched_case){1.25e9, 4, 5, 1000, 3000});
}

struct bursts {
    size_t n;
    uint64_t min, max;
    uint64_t starts[4096];
    uint64_t sizes[4096];
};

static void record_burst(void *ctx, uint64_t start, uint64_t bytes)
{
    struct bursts *b = ctx;
    if (b->n < 4096) {
        b->starts[b->n] = start;
        b->sizes[b->n] = bytes;
    }
    if (b->n == 0 || bytes < b->min)
        b->min = bytes;
    if (bytes > b->max)
        b->max = bytes;
    b->n++;
}

Test(ratelimit, burst_sizes_with_mixed_packets)
{
    /* Up to burst_size bytes go back to back; a burst ends with the packet that reaches
     * it, so each is in [burst_size, burst_size + largest packet). */
    struct spci_rate_step st;
    step_for(1e9, 1.05, &st);
    struct sim s = {.now = T0};
    const uint64_t burst = 65536, maxpkt = 9000;
    spci_rl_init(&s.rl, burst, T0);
    struct bursts *b = calloc(1, sizeof *b);
    uint64_t seed = 42;
    for (size_t i = 0; i < 200000; i++)
        sim_send(&s, &st, 64 + tu_rand(&seed) % (maxpkt - 63), record_burst, b);
    cr_assert_gt(b->n, 1000);
    cr_assert_geq(b->min, burst);
    cr_assert_lt(b->max, burst + maxpkt);
    /* Consecutive bursts are spaced exactly by the previous burst's duration. */
    for (size_t k = 1; k < b->n && k < 4096; k++) {
        uint64_t gap = b->starts[k] - b->starts[k - 1];
        long double want = b->sizes[k - 1]; /* 1e9 / 1e9 = 1 ns per byte */
        cr_assert(fabsl((long double)gap - want) <= 1.0L, "burst %zu: gap %llu for %llu bytes", k,
                  (unsigned long long)gap, (unsigned long long)b->sizes[k - 1]);
    }
    free(b);
}

Test(ratelimit, burst_size_zero_paces_every_packet)
{
    struct spci_rate_step st;
    step_for(1e6, 1.05, &st);
    struct sim s = {.now = T0};
    spci_rl_init(&s.rl, 0, T0);
    for (int i = 0; i < 1000; i++)
        sim_send(&s, &st, 1000, NULL, NULL);
    cr_assert_eq(s.n_wakes, 999);
    cr_assert_eq(s.now, T0 + 999ull * 1000000);
}

/* A stall (the transport took D ns on one packet) is caught up at no more than
 * ratio x rate, and once caught up the nominal schedule is exact again. */
Test(ratelimit, catch_up_never_above_ratio_and_returns_to_schedule)
{
    const double rate = 1e9, ratio = 1.05;
    const uint64_t burst = 65536, pkt = 8192;
    struct spci_rate_step st;
    step_for(rate, ratio, &st);
    struct sim s = {.now = T0};
    spci_rl_init(&s.rl, burst, T0);
    struct bursts *b = calloc(1, sizeof *b);
    const size_t stall_at = 800; /* packets */
    const uint64_t stall = 50 * burst; /* ns: 50 bursts' worth at 1 ns/byte */
    size_t n = 16000;
    for (size_t i = 0; i < n; i++) {
        sim_send(&s, &st, pkt, record_burst, b);
        if (i == stall_at)
            s.now += stall;
    }
    cr_assert_eq(b->n, n * pkt / burst - 1);
    size_t fast = 0;
    for (size_t k = 1; k < b->n; k++) {
        long double gap = (long double)(b->starts[k] - b->starts[k - 1]);
        long double min_gap = (long double)b->sizes[k - 1] * 1e9L / (rate * ratio);
        /* Starts are whole ns (rounded up), hence the 1 ns allowance. */
        cr_assert(gap >= min_gap - 1.0L, "burst %zu: %Lg ns for %llu bytes is above ratio x rate",
                  k, gap, (unsigned long long)b->sizes[k - 1]);
        if (gap < (long double)b->sizes[k - 1] - 1.0L)
            fast++;
    }
    /* The deficit (50 bursts) is recovered at 5% extra: about 1000 fast bursts. */
    cr_assert_gt(fast, 900, "only %zu bursts caught up", fast);
    cr_assert_lt(fast, b->n - 100, "still catching up at the end");
    /* Back on the nominal schedule: the last burst starts at T0 + bytes before it. */
    uint64_t last = b->starts[b->n - 1];
    uint64_t want = T0 + (uint64_t)(b->n - 1) * burst;
    cr_assert(last >= want && last - want <= 1, "last burst at %llu, schedule %llu",
              (unsigned long long)last, (unsigned long long)want);
    free(b);
}

/* Idle time is not a deficit: after a long idle gap, bursts resume at the nominal rate,
 * not the catch-up rate; without spci_rl_resume they would catch up (the contrast shows
 * the check can fail). */
static size_t fast_after_idle(bool resume)
{
    const double rate = 1e9, ratio = 1.05;
    const uint64_t burst = 65536, pkt = 8192;
    struct spci_rate_step st;
    step_for(rate, ratio, &st);
    struct sim s = {.now = T0};
    spci_rl_init(&s.rl, burst, T0);
    for (size_t i = 0; i < 100; i++)
        sim_send(&s, &st, pkt, NULL, NULL);
    s.now += 1000000000; /* idle for 1 s */
    if (resume)
        spci_rl_resume(&s.rl, s.now);
    struct bursts *b = calloc(1, sizeof *b);
    for (size_t i = 0; i < 2000; i++)
        sim_send(&s, &st, pkt, record_burst, b);
    size_t fast = 0;
    for (size_t k = 1; k < b->n; k++) {
        uint64_t gap = b->starts[k] - b->starts[k - 1];
        cr_assert_geq(gap + 1, (uint64_t)((long double)b->sizes[k - 1] * 1e9L / (rate * ratio)));
        if (gap + 1 < b->sizes[k - 1])
            fast++;
    }
    free(b);
    return fast;
}

Test(ratelimit, idle_not_caught_up)
{
    cr_assert_eq(fast_after_idle(true), 0, "bursts after idle went faster than nominal");
    cr_assert_gt(fast_after_idle(false), 100);
}

Test(ratelimit, resume_keeps_the_pending_burst)
{
    /* A partial burst sent just before going idle keeps its place: resume moves the
     * nominal time to now - pending, so the rest of the burst is not a free extra. */
    struct spci_rate_step st;
    step_for(1e9, 1.05, &st);
    struct sim s = {.now = T0};
    spci_rl_init(&s.rl, 10000, T0);
    sim_send(&s, &st, 4000, NULL, NULL);
    s.now += 1000000;
    spci_rl_resume(&s.rl, s.now);
    uint64_t resumed = s.now;
    for (int i = 0; i < 3; i++)
        sim_send(&s, &st, 4000, NULL, NULL); /* 16000 bytes: the burst ends at 12000 */
    /* The burst (4000 before idle + 8000 after) ends at now - 4000 + 12000 ns. */
    cr_assert_eq(s.n_wakes, 1);
    cr_assert_eq(s.now, resumed + 8000);
}

Test(ratelimit, per_heap_steps_mix)
{
    /* Packets at different rates in one burst: the burst lasts the sum of their
     * durations; unlimited packets take no time and do not count toward the burst. */
    struct spci_rate_step a, b, none;
    step_for(1e9, 1.05, &a);  /* 1 ns/byte */
    step_for(25e7, 1.05, &b); /* 4 ns/byte */
    step_for(0, 1.05, &none);
    cr_assert(!spci_rate_step_limited(&none));
    struct sim s = {.now = T0};
    spci_rl_init(&s.rl, 8000, T0);
    for (int i = 0; i < 4; i++) {
        sim_send(&s, &a, 1000, NULL, NULL);
        sim_send(&s, &none, 1000000, NULL, NULL);
        sim_send(&s, &b, 1000, NULL, NULL);
    }
    cr_assert_eq(s.n_wakes, 0);
    cr_assert_eq(s.rl.pend_bytes, 8000);
    sim_send(&s, &a, 1000, NULL, NULL);
    cr_assert_eq(s.n_wakes, 1);
    cr_assert_eq(s.now, T0 + 4 * (1000 + 4000));
}

Test(ratelimit, rate_step_values_and_errors)
{
    struct spci_rate_step st;
    cr_assert_eq(spci_rate_step(0, 1.05, &st), 0);
    cr_assert_eq(st.nominal, 0);
    cr_assert_eq(st.burst, 0);
    cr_assert_eq(spci_rate_step(-1, 1.05, &st), -EINVAL);
    cr_assert_eq(spci_rate_step(NAN, 1.05, &st), -EINVAL);
    cr_assert_eq(spci_rate_step(INFINITY, 1.05, &st), -EINVAL);
    cr_assert_eq(spci_rate_step(1e9, 0.99, &st), -EINVAL);
    cr_assert_eq(spci_rate_step(1e9, NAN, &st), -EINVAL);
    cr_assert_eq(spci_rate_step(125e6, 1.0, &st), 0);
    cr_assert(st.nominal == 8 * SPCI_FIX_ONE);
    cr_assert(st.burst == st.nominal);
    cr_assert_eq(spci_rate_step(125e6, 2.0, &st), 0);
    cr_assert(st.burst == 4 * SPCI_FIX_ONE);
    /* Extreme rates neither overflow nor become "unlimited". */
    cr_assert_eq(spci_rate_step(1e300, 1.0, &st), 0);
    cr_assert(spci_rate_step_limited(&st));
    cr_assert_eq(spci_rate_step(1e-300, 1.0, &st), 0);
    cr_assert(st.nominal > 0);
    struct sim s = {.now = T0};
    spci_rl_init(&s.rl, 100, T0);
    spci_rl_account(&s.rl, &st, 16u << 20);
    spci_fix wake;
    cr_assert_eq(spci_rl_gate(&s.rl, T0, &wake), 1);
    cr_assert(wake > 0);
    cr_assert_eq(spci_fix_ceil_ns(wake), spci_fix_ceil_ns(SPCI_FIX_MAX));
}

Test(ratelimit, ceil_ns)
{
    cr_assert_eq(spci_fix_ceil_ns(0), 0);
    cr_assert_eq(spci_fix_ceil_ns(-5), 0);
    cr_assert_eq(spci_fix_ceil_ns(1), 1);
    cr_assert_eq(spci_fix_ceil_ns(SPCI_FIX_ONE), 1);
    cr_assert_eq(spci_fix_ceil_ns(SPCI_FIX_ONE + 1), 2);
    cr_assert_eq(spci_fix_ceil_ns(spci_fix_from_ns(12345)), 12345);
}

/* Several writers, one rate: two writers' limiters only gather bytes; each full burst is
 * merged into the shared limiter, whose schedule is then exactly that of one writer
 * sending all the bytes (bursts back to back at the nominal rate). */
Test(ratelimit, merged_writers_keep_one_schedule)
{
    struct spci_rate_step st;
    step_for(125e6, 1.05, &st); /* 8 ns per byte */
    const uint64_t burst = 65536;
    struct spci_ratelimit shared, w[2];
    spci_rl_init(&shared, burst, T0);
    spci_rl_init(&w[0], burst, T0);
    spci_rl_init(&w[1], burst, T0);
    uint64_t now = T0;
    for (int i = 0; i < 1000; i++) {
        struct spci_ratelimit *mine = &w[i % 2];
        for (int p = 0; p < 64; p++)
            spci_rl_account(mine, &st, 1024); /* a burst's worth */
        cr_assert(spci_rl_need_clock(mine));
        spci_rl_merge(&shared, mine);
        cr_assert_eq(mine->pend_bytes, 0);
        cr_assert_eq(mine->pend, 0);
        cr_assert_eq(mine->pend_burst, 0);
        cr_assert(!spci_rl_need_clock(mine));
        spci_fix wake;
        if (spci_rl_gate(&shared, now, &wake)) {
            now = spci_fix_ceil_ns(wake);
            cr_assert_eq(spci_rl_gate(&shared, now, &wake), 0);
        }
        /* The burst i + 1 starts exactly (i + 1) bursts' nominal time after T0. */
        cr_assert_eq(now - T0, (uint64_t)(i + 1) * burst * 8, "burst %d at %" PRIu64 " ns", i,
                     (uint64_t)(now - T0));
    }
}
