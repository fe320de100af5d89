/* The software rate limiter (see ratelimit.h). */
#include <errno.h>
#include <math.h>

#include "ratelimit.h"

/* 2^64 as a long double (exact). */
#define TWO64 18446744073709551616.0L

static spci_fix fix_from_ld(long double ns)
{
    long double v = ns * TWO64;
    if (!(v < (long double)SPCI_FIX_MAX))
        return SPCI_FIX_MAX;
    return (spci_fix)v;
}

int spci_rate_step(double rate, double ratio, struct spci_rate_step *out)
{
    if (!isfinite(rate) || rate < 0 || !isfinite(ratio) || ratio < 1)
        return -EINVAL;
    if (rate == 0) {
        out->nominal = out->burst = 0;
        return 0;
    }
    out->nominal = fix_from_ld(1e9L / (long double)rate);
    out->burst = fix_from_ld(1e9L / ((long double)rate * (long double)ratio));
    /* A rate so high that a byte takes under 2^-64 ns still counts as limited. */
    if (out->nominal == 0)
        out->nominal = 1;
    return 0;
}

/* size x step, exact, saturating at SPCI_FIX_MAX. */
static spci_fix fix_mul(spci_fix step, uint64_t size)
{
    __extension__ typedef unsigned __int128 u128;
    u128 whole = (u128)(uint64_t)(step >> SPCI_FIX_SHIFT) * size;
    u128 frac = (u128)(uint64_t)step * size;
    /* Each part below 2^124 keeps the sum below 2^125. */
    if (whole >= ((u128)1 << (124 - SPCI_FIX_SHIFT)) || frac >= ((u128)1 << 124))
        return SPCI_FIX_MAX;
    return (spci_fix)((whole << SPCI_FIX_SHIFT) + frac);
}

static spci_fix fix_add(spci_fix a, spci_fix b)
{
    spci_fix r = a + b; /* both <= SPCI_FIX_MAX = 2^125: no overflow */
    return r > SPCI_FIX_MAX ? SPCI_FIX_MAX : r;
}

static spci_fix fix_max(spci_fix a, spci_fix b)
{
    return a > b ? a : b;
}

void spci_rl_init(struct spci_ratelimit *rl, uint64_t burst_size, uint64_t now_ns)
{
    rl->t_nom = rl->t_burst = spci_fix_from_ns(now_ns);
    rl->pend = rl->pend_burst = 0;
    rl->pend_bytes = 0;
    rl->burst_size = burst_size;
    rl->must_sleep = false;
}

int spci_rl_gate(struct spci_ratelimit *rl, uint64_t now_ns, spci_fix *wake)
{
    spci_fix now = spci_fix_from_ns(now_ns);
    if (rl->must_sleep) {
        if (now < rl->t_burst) {
            *wake = rl->t_burst;
            return 1;
        }
        rl->must_sleep = false;
    }
    if (rl->pend_bytes >= rl->burst_size) {
        rl->t_nom = fix_add(rl->t_nom, rl->pend);
        rl->t_burst = fix_add(rl->t_burst, rl->pend_burst);
        rl->pend = rl->pend_burst = 0;
        rl->pend_bytes = 0;
        /* The next burst may not start before the nominal schedule allows, nor (when
         * catching up) sooner than the catch-up rate allows after this one; basing the
         * burst time on now keeps a late burst from licensing a faster one. */
        rl->t_burst = fix_max(now, fix_max(rl->t_burst, rl->t_nom));
        if (now < rl->t_burst) {
            rl->must_sleep = true;
            *wake = rl->t_burst;
            return 1;
        }
    }
    return 0;
}

void spci_rl_account(struct spci_ratelimit *rl, const struct spci_rate_step *st, size_t size)
{
    if (st->nominal == 0)
        return;
    rl->pend = fix_add(rl->pend, fix_mul(st->nominal, size));
    rl->pend_burst = fix_add(rl->pend_burst, fix_mul(st->burst, size));
    rl->pend_bytes += size;
}

void spci_rl_merge(struct spci_ratelimit *rl, struct spci_ratelimit *from)
{
    rl->pend = fix_add(rl->pend, from->pend);
    rl->pend_burst = fix_add(rl->pend_burst, from->pend_burst);
    rl->pend_bytes += from->pend_bytes;
    from->pend = from->pend_burst = 0;
    from->pend_bytes = 0;
}

void spci_rl_resume(struct spci_ratelimit *rl, uint64_t now_ns)
{
    spci_fix back = spci_fix_from_ns(now_ns) - rl->pend;
    if (back > rl->t_nom)
        rl->t_nom = back;
}
