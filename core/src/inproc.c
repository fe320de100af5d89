/* Named in-process packet queues and the inproc receiver (inproc.h).
 *
 * Invariants:
 * - registry_lock guards the registry list and every queue's refs; a queue is in the
 *   list exactly while refs > 0, so two opens of one name always meet the same queue.
 * - q->lock guards the packet list, stopped and signalled. signalled says whether the
 *   eventfd counter is non-zero; it is kept equal to (n > 0 || stopped) at every unlock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "speadcast/inproc.h"

struct node {
    struct spc_inproc_packet pub; /* first: the pointer handed out */
    struct node *next;
    uint8_t bytes[];
};

struct spc_inproc_queue {
    struct spc_inproc_queue *next_q; /* registry list */
    size_t refs;                     /* under registry_lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;             /* signalled on push and stop */
    struct node *head, *tail;
    size_t n;
    bool stopped;
    bool signalled;
    int efd;
    char name[];
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct spc_inproc_queue *registry;

/* ------------------------------------------------------------------ eventfd level */

static void efd_raise(struct spc_inproc_queue *q)
{
    if (q->signalled)
        return;
    uint64_t one = 1;
    /* Cannot fail: the counter is 0 here, far from overflow. */
    while (write(q->efd, &one, sizeof one) < 0 && errno == EINTR) {
    }
    q->signalled = true;
}

static void efd_lower(struct spc_inproc_queue *q)
{
    if (!q->signalled)
        return;
    uint64_t v;
    while (read(q->efd, &v, sizeof v) < 0 && errno == EINTR) {
    }
    q->signalled = false;
}

/* ------------------------------------------------------------------ queues */

static void queue_free(struct spc_inproc_queue *q)
{
    struct node *nd = q->head;
    while (nd) {
        struct node *next = nd->next;
        free(nd);
        nd = next;
    }
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    close(q->efd);
    free(q);
}

static int queue_new(struct spc_inproc_queue **out, const char *name, size_t len)
{
    struct spc_inproc_queue *q = calloc(1, sizeof(*q) + len + 1);
    if (!q)
        return -ENOMEM;
    memcpy(q->name, name, len + 1);
    q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (q->efd < 0) {
        int e = errno;
        free(q);
        return -e;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc) {
        close(q->efd);
        free(q);
        return -rc;
    }
    pthread_mutex_init(&q->lock, NULL);
    *out = q;
    return 0;
}

int spc_inproc_queue_open(struct spc_inproc_queue **out, const char *name)
{
    if (!out || !name)
        return -EINVAL;
    size_t len = strnlen(name, SPC_INPROC_NAME_MAX + 1);
    if (len == 0 || len > SPC_INPROC_NAME_MAX)
        return -EINVAL;
    pthread_mutex_lock(&registry_lock);
    struct spc_inproc_queue *q;
    for (q = registry; q; q = q->next_q)
        if (strcmp(q->name, name) == 0)
            break;
    if (q) {
        q->refs++;
    } else {
        int rc = queue_new(&q, name, len);
        if (rc < 0) {
            pthread_mutex_unlock(&registry_lock);
            return rc;
        }
        q->refs = 1;
        q->next_q = registry;
        registry = q;
    }
    pthread_mutex_unlock(&registry_lock);
    *out = q;
    return 0;
}

void spc_inproc_queue_close(struct spc_inproc_queue *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&registry_lock);
    bool last = --q->refs == 0;
    if (last) {
        struct spc_inproc_queue **pp = &registry;
        while (*pp != q)
            pp = &(*pp)->next_q;
        *pp = q->next_q;
    }
    pthread_mutex_unlock(&registry_lock);
    if (last)
        queue_free(q);
}

const char *spc_inproc_queue_name(const struct spc_inproc_queue *q)
{
    return q->name;
}

int spc_inproc_queue_pushv(struct spc_inproc_queue *q, const struct iovec *iov, unsigned n_iov)
{
    if (!q || (n_iov && !iov))
        return -EINVAL;
    size_t size = 0;
    for (unsigned i = 0; i < n_iov; i++) {
        if (iov[i].iov_len && !iov[i].iov_base)
            return -EINVAL;
        if (iov[i].iov_len > SIZE_MAX - sizeof(struct node) - size)
            return -ENOMEM;
        size += iov[i].iov_len;
    }
    /* Refuse early without allocating; checked again under the lock. */
    if (spc_inproc_queue_stopped(q))
        return -SPC_ESTOPPED;
    struct node *nd = malloc(sizeof(*nd) + size);
    if (!nd)
        return -ENOMEM;
    size_t off = 0;
    for (unsigned i = 0; i < n_iov; i++) {
        if (iov[i].iov_len)
            memcpy(nd->bytes + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    nd->pub.size = size;
    nd->pub.data = nd->bytes;
    nd->next = NULL;

    pthread_mutex_lock(&q->lock);
    if (q->stopped) {
        pthread_mutex_unlock(&q->lock);
        free(nd);
        return -SPC_ESTOPPED;
    }
    if (q->tail)
        q->tail->next = nd;
    else
        q->head = nd;
    q->tail = nd;
    q->n++;
    efd_raise(q);
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

int spc_inproc_queue_push(struct spc_inproc_queue *q, const void *data, size_t len)
{
    if (len && !data)
        return -EINVAL;
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    return spc_inproc_queue_pushv(q, &iov, 1);
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int spc_inproc_queue_pop(struct spc_inproc_queue *q, struct spc_inproc_packet **out,
                         int timeout_ms)
{
    if (!q || !out)
        return -EINVAL;
    struct timespec deadline;
    if (timeout_ms > 0)
        deadline_after(&deadline, timeout_ms);
    pthread_mutex_lock(&q->lock);
    int rc = 0;
    while (!q->head && !q->stopped) {
        if (timeout_ms == 0) {
            rc = -EAGAIN;
            break;
        }
        if (timeout_ms < 0) {
            pthread_cond_wait(&q->cond, &q->lock);
        } else if (pthread_cond_timedwait(&q->cond, &q->lock, &deadline) == ETIMEDOUT) {
            if (!q->head && !q->stopped)
                rc = -ETIMEDOUT;
            break;
        }
    }
    if (rc == 0) {
        struct node *nd = q->head;
        if (!nd) {
            rc = -SPC_ESTOPPED;
        } else {
            q->head = nd->next;
            if (!q->head)
                q->tail = NULL;
            q->n--;
            if (!q->head && !q->stopped)
                efd_lower(q);
            *out = &nd->pub;
        }
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void spc_inproc_packet_free(struct spc_inproc_packet *pkt)
{
    /* pub is the first member of struct node. */
    free(pkt);
}

void spc_inproc_queue_stop(struct spc_inproc_queue *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    q->stopped = true;
    efd_raise(q);
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

bool spc_inproc_queue_stopped(const struct spc_inproc_queue *q)
{
    struct spc_inproc_queue *m = (struct spc_inproc_queue *)q;
    pthread_mutex_lock(&m->lock);
    bool s = m->stopped;
    pthread_mutex_unlock(&m->lock);
    return s;
}

size_t spc_inproc_queue_length(const struct spc_inproc_queue *q)
{
    struct spc_inproc_queue *m = (struct spc_inproc_queue *)q;
    pthread_mutex_lock(&m->lock);
    size_t n = m->n;
    pthread_mutex_unlock(&m->lock);
    return n;
}

int spc_inproc_queue_fd(const struct spc_inproc_queue *q)
{
    return q->efd;
}

/* ------------------------------------------------------------------ receiver */

struct spc_inproc_receiver {
    struct spc_inproc_queue *q;
    struct spc_decoder *dec;
    bool flushed; /* the queue ended and the decoder's incomplete heaps were released */
};

int spc_inproc_receiver_create(struct spc_inproc_receiver **out, const char *name,
                               const struct spc_decoder_config *cfg)
{
    if (!out)
        return -EINVAL;
    struct spc_inproc_receiver *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    int rc = spc_inproc_queue_open(&r->q, name);
    if (rc == 0) {
        rc = spc_decoder_create(&r->dec, cfg);
        if (rc < 0)
            spc_inproc_queue_close(r->q);
    }
    if (rc < 0) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void spc_inproc_receiver_destroy(struct spc_inproc_receiver *r)
{
    if (!r)
        return;
    spc_decoder_destroy(r->dec);
    spc_inproc_queue_close(r->q);
    free(r);
}

struct spc_inproc_queue *spc_inproc_receiver_queue(const struct spc_inproc_receiver *r)
{
    return r->q;
}

int spc_inproc_receiver_fd(const struct spc_inproc_receiver *r)
{
    return spc_inproc_queue_fd(r->q);
}

static int64_t now_ms(void)
{
    return (int64_t)(spci_monotonic_ns() / 1000000u);
}

int spc_inproc_receiver_next(struct spc_inproc_receiver *r, struct spc_decoded_heap **out,
                             int timeout_ms)
{
    if (!r || !out)
        return -EINVAL;
    int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
    for (;;) {
        if (spc_decoder_pop(r->dec, out) == 1)
            return 0;
        if (r->flushed)
            return -SPC_ESTOPPED;
        int wait = timeout_ms;
        if (timeout_ms > 0) {
            int64_t left = deadline - now_ms();
            wait = left > 0 ? (int)left : 0;
        }
        struct spc_inproc_packet *pkt;
        int rc = spc_inproc_queue_pop(r->q, &pkt, wait);
        if (rc == -SPC_ESTOPPED) {
            spc_decoder_flush(r->dec);
            r->flushed = true;
            continue;
        }
        if (rc == -EAGAIN && timeout_ms > 0)
            rc = -ETIMEDOUT;
        if (rc < 0)
            return rc;
        rc = spc_decoder_add_packet(r->dec, pkt->data, pkt->size, NULL);
        spc_inproc_packet_free(pkt);
        if (rc == -ENOMEM)
            return rc;
        /* Other decoder errors: a bad packet, counted by the decoder and skipped. */
    }
}

void spc_inproc_receiver_stats(const struct spc_inproc_receiver *r,
                               struct spc_decoder_stats *out)
{
    spc_decoder_stats(r->dec, out);
}
