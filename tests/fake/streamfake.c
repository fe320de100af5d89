/* "streamfake": a test transport for the stream suites, controlled through a shared
 * struct sf_control (streamfake.h) whose address is the "control" option. It records
 * every packet (time, heap cnt, offset, substream, size, batch), can copy the bytes,
 * hold send until released, fail chosen heaps' packets, return an error from send, and
 * complete asynchronously (checking that a pending packet's memory is left untouched
 * until its completion). It records memory registrations (refusing an unknown handle,
 * and counting calls made while a send runs), and with the "hw_pace" option paces in
 * "hardware" when asked to (it reports so at open; it can withdraw that in a send). It
 * may be opened once per writer thread (SPC_TRANSPORT_CAP_PER_WRITER): each packet records
 * which object sent it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/transport.h"
#include "streamfake.h"

struct sf_opts {
    uint64_t control;
    uint64_t substreams;
    bool hw_pace;
};

#define SF_MAX_REGIONS 16

struct sf_pending {
    void *token;
    const struct iovec *iov;
    uint32_t n_iov;
    uint64_t hash;
    size_t rec;
    int status;
};

struct sf {
    struct spc_transport base;
    struct sf_control *c;
    uint32_t index; /* objects opened on c before this one */
    uint8_t *pkt; /* one packet, gathered */
    size_t mps;
    struct sf_pending *pend;
    size_t n_pend, cap_pend;
    bool in_send;
    struct sf_region {
        void *addr;
        size_t len;
        bool live;
    } regions[SF_MAX_REGIONS];
};

static const struct spc_option sf_options[] = {
    {SPC_OPTION_INIT, .name = "control", .type = SPC_OPT_UINT,
     .offset = offsetof(struct sf_opts, control), .flags = SPC_OPT_REQUIRED,
     .help = "address of the test's struct sf_control"},
    {SPC_OPTION_INIT, .name = "substreams", .type = SPC_OPT_UINT,
     .offset = offsetof(struct sf_opts, substreams),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 1, .min.u = 1, .max.u = 16,
     .help = "number of substreams"},
    {SPC_OPTION_INIT, .name = "hw_pace", .type = SPC_OPT_BOOL,
     .offset = offsetof(struct sf_opts, hw_pace), .flags = SPC_OPT_DEFAULT, .def.b = false,
     .help = "pace in \"hardware\" when rate_method hw asks for it"},
};

static uint64_t fnv(const uint8_t *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t iov_hash(const struct iovec *iov, uint32_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < n; i++)
        h = fnv(iov[i].iov_base, iov[i].iov_len, h);
    return h;
}

static int sf_open(struct spc_transport *t, const void *options, const struct spc_transport_params *p)
{
    struct sf *f = spc_container_of(t, struct sf, base);
    const struct sf_opts *o = options;
    if (!o->control) {
        t->svc->set_error(t, "streamfake: control is 0");
        return -SPC_ECONFIG;
    }
    f->c = (struct sf_control *)(uintptr_t)o->control;
    f->mps = p->max_packet_size;
    if (!(f->pkt = malloc(f->mps)))
        return -ENOMEM;
    t->n_substreams = (uint32_t)o->substreams;
    bool hw = o->hw_pace && p->rate_method == SPC_RATE_METHOD_HW && p->rate > 0;
    if (hw)
        t->svc->set_hw_paced(t, true);
    pthread_mutex_lock(&f->c->lock);
    f->c->n_substreams = t->n_substreams;
    f->c->rate_method = p->rate_method;
    f->c->rate = p->rate;
    f->c->hw_paced = hw;
    f->index = (uint32_t)f->c->opened++;
    pthread_mutex_unlock(&f->c->lock);
    return 0;
}

/* Completes up to max pending packets (oldest or newest first). Called without c->lock. */
static int sf_complete(struct sf *f, size_t max, int override)
{
    struct sf_control *c = f->c;
    int done = 0;
    while (f->n_pend > 0 && max-- > 0) {
        pthread_mutex_lock(&c->lock);
        bool reverse = c->async_reverse;
        pthread_mutex_unlock(&c->lock);
        struct sf_pending p;
        if (reverse) {
            p = f->pend[--f->n_pend];
        } else {
            p = f->pend[0];
            memmove(f->pend, f->pend + 1, --f->n_pend * sizeof *f->pend);
        }
        int st = override ? override : p.status;
        pthread_mutex_lock(&c->lock);
        if (iov_hash(p.iov, p.n_iov) != p.hash)
            c->corrupt++;
        if (p.rec < c->rec_cap)
            c->rec[p.rec].status = st;
        c->pending--;
        pthread_mutex_unlock(&c->lock);
        f->base.svc->complete(&f->base, p.token, st);
        done++;
    }
    return done;
}

static void sf_close(struct spc_transport *t)
{
    struct sf *f = spc_container_of(t, struct sf, base);
    sf_complete(f, SIZE_MAX, -SPC_ESTOPPED);
    free(f->pend);
    free(f->pkt);
    pthread_mutex_lock(&f->c->lock);
    f->c->closed++;
    pthread_mutex_unlock(&f->c->lock);
}

static int sf_send(struct spc_transport *t, struct spc_tx_batch *b)
{
    struct sf *f = spc_container_of(t, struct sf, base);
    struct sf_control *c = f->c;
    pthread_mutex_lock(&c->lock);
    uint32_t batch = (uint32_t)c->n_batches++;
    c->sends_entered++;
    f->in_send = true;
    pthread_cond_broadcast(&c->cv);
    while (c->hold)
        pthread_cond_wait(&c->cv, &c->lock);
    if (c->send_rc) {
        int rc = c->send_rc;
        f->in_send = false;
        pthread_mutex_unlock(&c->lock);
        return rc;
    }
    if (b->n_packets > c->max_batch)
        c->max_batch = b->n_packets;
    bool async = c->async;
    bool withdraw = c->withdraw_hw && c->hw_paced;
    if (withdraw)
        c->withdraw_hw = c->hw_paced = false;
    pthread_mutex_unlock(&c->lock);
    if (withdraw)
        t->svc->set_hw_paced(t, false);

    if (async && f->n_pend + b->n_packets > f->cap_pend) {
        size_t cap = (f->n_pend + b->n_packets) * 2;
        struct sf_pending *np = realloc(f->pend, cap * sizeof *np);
        if (!np) {
            pthread_mutex_lock(&c->lock);
            f->in_send = false;
            pthread_mutex_unlock(&c->lock);
            return -ENOMEM;
        }
        f->pend = np;
        f->cap_pend = cap;
    }
    for (size_t i = 0; i < b->n_packets; i++) {
        struct spc_tx_packet *p = spc_tx_batch_packet(b, i);
        size_t n = p->size <= f->mps ? spc_tx_packet_gather(p, f->pkt) : 0;
        struct spc_packet_info info;
        int prc = n ? t->svc->packet_parse(f->pkt, n, &info) : -EMSGSIZE;
        pthread_mutex_lock(&c->lock);
        uint64_t now = c->clock ? c->clock(c->user) : t->svc->clock_ns();
        int st = prc < 0 ? prc : (c->fail_on && info.heap_cnt == c->fail_cnt) ? c->fail_status : 0;
        size_t rec = c->n_rec++;
        if (rec < c->rec_cap)
            c->rec[rec] = (struct sf_packet){.t_ns = now, .cnt = prc < 0 ? UINT64_MAX : info.heap_cnt,
                                             .offset = prc < 0 ? 0 : info.heap_offset,
                                             .heap_size = prc < 0 ? 0 : info.heap_size,
                                             .substream = p->substream, .size = (uint32_t)p->size,
                                             .batch = batch, .object = f->index,
                                             .status = st};
        if (st == 0 && c->data && c->n_data + n <= c->data_cap) {
            memcpy(c->data + c->n_data, f->pkt, n);
            c->n_data += n;
        }
        if (async) {
            c->pending++;
            if (c->pending > c->max_pending)
                c->max_pending = c->pending;
        }
        void (*on_packet)(void *, size_t) = c->on_packet;
        void *user = c->user;
        pthread_mutex_unlock(&c->lock);
        if (on_packet)
            on_packet(user, p->size);
        if (async) {
            f->pend[f->n_pend++] = (struct sf_pending){.token = p->token, .iov = p->iov,
                                                       .n_iov = p->n_iov,
                                                       .hash = iov_hash(p->iov, p->n_iov),
                                                       .rec = rec, .status = st};
            p->status = SPC_TX_PENDING;
        } else {
            p->status = st;
        }
    }
    pthread_mutex_lock(&c->lock);
    f->in_send = false;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

static int sf_poll(struct spc_transport *t)
{
    return sf_complete(spc_container_of(t, struct sf, base), 3, 0);
}

static int sf_flush(struct spc_transport *t)
{
    sf_complete(spc_container_of(t, struct sf, base), SIZE_MAX, 0);
    return 0;
}

static int sf_register_memory(struct spc_transport *t, void *addr, size_t len, void **handle)
{
    struct sf *f = spc_container_of(t, struct sf, base);
    struct sf_control *c = f->c;
    pthread_mutex_lock(&c->lock);
    c->reg_calls++;
    c->memreg_in_send += f->in_send;
    int rc = c->reg_rc;
    struct sf_region *r = NULL;
    for (size_t i = 0; rc == 0 && i < SF_MAX_REGIONS && !r; i++)
        if (!f->regions[i].live)
            r = &f->regions[i];
    if (rc == 0 && !r)
        rc = -ENOSPC;
    if (rc == 0) {
        *r = (struct sf_region){addr, len, true};
        *handle = r;
        c->n_regions++;
        c->last_reg_addr = addr;
        c->last_reg_len = len;
    } else {
        t->svc->set_error(t, "streamfake: registering %zu bytes failed", len);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static int sf_deregister_memory(struct spc_transport *t, void *handle)
{
    struct sf *f = spc_container_of(t, struct sf, base);
    struct sf_control *c = f->c;
    struct sf_region *r = handle;
    pthread_mutex_lock(&c->lock);
    c->dereg_calls++;
    c->memreg_in_send += f->in_send;
    int rc = c->dereg_rc;
    if (rc == 0 && (r < f->regions || r >= f->regions + SF_MAX_REGIONS || !r->live))
        rc = -EINVAL; /* not a handle this transport gave out */
    if (rc == 0) {
        r->live = false;
        c->n_regions--;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static const struct spc_transport_ops sf_ops = {
    SPC_TRANSPORT_OPS_INIT, .open = sf_open, .close = sf_close, .send = sf_send,
    .flush = sf_flush, .poll = sf_poll, .register_memory = sf_register_memory,
    .deregister_memory = sf_deregister_memory,
};

static const struct spc_transport_descriptor sf_desc = {
    SPC_TRANSPORT_DESCRIPTOR_INIT,
    .name = "streamfake",
    .version = "1.0",
    .description = "test transport for the stream suites (recording, faults, async)",
    .caps = SPC_TRANSPORT_CAP_ASYNC | SPC_TRANSPORT_CAP_RELIABLE | SPC_TRANSPORT_CAP_MEMREG |
            SPC_TRANSPORT_CAP_HW_RATE | SPC_TRANSPORT_CAP_PER_WRITER,
    .options = sf_options,
    .n_options = sizeof sf_options / sizeof sf_options[0],
    .options_size = sizeof(struct sf_opts),
    .object_size = sizeof(struct sf),
    .max_substreams = 16,
    .ops = &sf_ops,
};

SPC_TRANSPORT_DEFINE(sf_desc)
