/* The completion queue of a send stream (spc_stream_completion_fd, spc_stream_drain): the
 * writer pushes completions of groups sent without a callback; the application drains
 * them. cq_lock guards the ring; the eventfd is readable while entries wait. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "log_internal.h"
#include "stream_cq.h"

/* Makes room for n more entries. Grows only while the application lags behind; never in
 * the steady state. Under cq_lock. */
static int cq_reserve(struct spc_stream *s, size_t n)
{
    if (s->cq_cap - s->cq_len >= n)
        return 0;
    size_t ncap = s->cq_cap;
    while (ncap - s->cq_len < n)
        ncap *= 2;
    struct spc_stream_completion *c = malloc(ncap * sizeof *c);
    if (!c)
        return -ENOMEM;
    for (size_t i = 0; i < s->cq_len; i++)
        c[i] = s->cq[(s->cq_head + i) % s->cq_cap];
    free(s->cq);
    s->cq = c;
    s->cq_cap = ncap;
    s->cq_head = 0;
    return 0;
}

void spci_stream_cq_push(struct spc_stream *s, const struct done_rec *d, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += !d[i].cb && !d[i].sync;
    if (m == 0)
        return;
    pthread_mutex_lock(&s->cq_lock);
    if (cq_reserve(s, m) < 0) {
        pthread_mutex_unlock(&s->cq_lock);
        spci_log(SPC_LOG_ERROR, "completion queue: out of memory; %zu completions were lost", m);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (d[i].cb || d[i].sync)
            continue;
        s->cq[(s->cq_head + s->cq_len++) % s->cq_cap] = (struct spc_stream_completion){
            .user = d[i].user, .status = d[i].status, .bytes = d[i].bytes};
    }
    /* One signal per run, none while the consumer has not read the last one: the fd stays
     * readable while entries wait, and drain reads the signal only once the queue is
     * empty. */
    if (!s->cq_signalled) {
        uint64_t one = 1;
        ssize_t w = write(s->efd, &one, sizeof one);
        (void)w; /* cannot fail: the counter is 0 */
        s->cq_signalled = true;
        spci_stat_add(&s->st_cq_signals, 1);
    }
    pthread_mutex_unlock(&s->cq_lock);
}

int spc_stream_completion_fd(struct spc_stream *s)
{
    if (!s)
        return -EINVAL;
    return s->cq_on ? s->efd : -SPC_ENOTSUP;
}

int spc_stream_drain(struct spc_stream *s, struct spc_stream_completion *out, size_t max)
{
    if (!s || (!out && max))
        return -EINVAL;
    if (!s->cq_on)
        return -SPC_ENOTSUP;
    if (max > INT32_MAX)
        max = INT32_MAX;
    pthread_mutex_lock(&s->cq_lock);
    size_t m = s->cq_len < max ? s->cq_len : max;
    for (size_t i = 0; i < m; i++)
        out[i] = s->cq[(s->cq_head + i) % s->cq_cap];
    s->cq_head = (s->cq_head + m) % s->cq_cap;
    s->cq_len -= m;
    if (s->cq_len == 0 && s->cq_signalled) {
        uint64_t v;
        ssize_t r = read(s->efd, &v, sizeof v);
        (void)r; /* resets the counter; the fd stays readable only while entries wait */
        s->cq_signalled = false;
    }
    pthread_mutex_unlock(&s->cq_lock);
    return (int)m;
}
