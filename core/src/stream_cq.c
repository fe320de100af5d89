/* The completion queue of a send stream (spc_stream_completion_fd, spc_stream_drain): the
 * writer pushes completions of groups sent without a callback; the application drains
 * them. cq_lock guards the ring; the eventfd is readable while entries wait. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "log_internal.h"
#include "stream_internal.h"

void spci_stream_cq_push(struct spc_stream *s, void *user, int status, uint64_t bytes)
{
    pthread_mutex_lock(&s->cq_lock);
    if (s->cq_len == s->cq_cap) {
        /* Grows only while the application lags behind; never in the steady state. */
        size_t ncap = s->cq_cap * 2;
        struct spc_stream_completion *n = malloc(ncap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&s->cq_lock);
            spci_log(SPC_LOG_ERROR, "completion queue: out of memory; a completion was lost");
            return;
        }
        for (size_t i = 0; i < s->cq_len; i++)
            n[i] = s->cq[(s->cq_head + i) % s->cq_cap];
        free(s->cq);
        s->cq = n;
        s->cq_cap = ncap;
        s->cq_head = 0;
    }
    s->cq[(s->cq_head + s->cq_len) % s->cq_cap] =
        (struct spc_stream_completion){.user = user, .status = status, .bytes = bytes};
    if (s->cq_len++ == 0) {
        uint64_t one = 1;
        ssize_t w = write(s->efd, &one, sizeof one);
        (void)w; /* cannot fail: the counter is 0 or 1 */
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
    if (m > 0 && s->cq_len == 0) {
        uint64_t v;
        ssize_t r = read(s->efd, &v, sizeof v);
        (void)r; /* resets the counter; the fd stays readable only while entries wait */
    }
    pthread_mutex_unlock(&s->cq_lock);
    return (int)m;
}
