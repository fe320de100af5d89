/* "fakeasync": a transport with asynchronous completion. send leaves every packet
 * SPC_TX_PENDING; poll completes up to two, flush all; close fails what is left with
 * -SPC_ESTOPPED. With fail_every = N, every Nth packet completes with -EIO. */
#include <errno.h>
#include <stdlib.h>

#include "speadcast/transport.h"

struct fa_opts {
    uint64_t fail_every;
};

struct fa {
    struct spc_transport base;
    uint64_t fail_every, count;
    void **tokens;
    size_t n, cap, head;
};

static const struct spc_option fa_options[] = {
    {SPC_OPTION_INIT, .name = "fail_every", .type = SPC_OPT_UINT, .offset = offsetof(struct fa_opts, fail_every),
     .flags = SPC_OPT_DEFAULT, .def.u = 0, .help = "every Nth packet fails with EIO; 0 = none"},
};

static int fa_open(struct spc_transport *t, const void *options, const struct spc_transport_params *p)
{
    (void)p;
    struct fa *f = spc_container_of(t, struct fa, base);
    f->fail_every = ((const struct fa_opts *)options)->fail_every;
    return 0;
}

static int fa_complete(struct fa *f, size_t max, int status_override)
{
    int done = 0;
    while (f->head < f->n && max--) {
        f->count++;
        int st = status_override ? status_override
                                 : (f->fail_every && f->count % f->fail_every == 0) ? -EIO : 0;
        f->base.svc->complete(&f->base, f->tokens[f->head++], st);
        done++;
    }
    if (f->head == f->n)
        f->head = f->n = 0;
    return done;
}

static void fa_close(struct spc_transport *t)
{
    struct fa *f = spc_container_of(t, struct fa, base);
    fa_complete(f, SIZE_MAX, -SPC_ESTOPPED);
    free(f->tokens);
}

static int fa_send(struct spc_transport *t, struct spc_tx_batch *b)
{
    struct fa *f = spc_container_of(t, struct fa, base);
    if (f->n + b->n_packets > f->cap) {
        size_t cap = (f->n + b->n_packets) * 2;
        void **nt = realloc(f->tokens, cap * sizeof *nt);
        if (!nt)
            return -ENOMEM;
        f->tokens = nt;
        f->cap = cap;
    }
    for (size_t i = 0; i < b->n_packets; i++) {
        struct spc_tx_packet *p = spc_tx_batch_packet(b, i);
        f->tokens[f->n++] = p->token;
        p->status = SPC_TX_PENDING;
    }
    return 0;
}

static int fa_poll(struct spc_transport *t)
{
    return fa_complete(spc_container_of(t, struct fa, base), 2, 0);
}

static int fa_flush(struct spc_transport *t)
{
    fa_complete(spc_container_of(t, struct fa, base), SIZE_MAX, 0);
    return 0;
}

static const struct spc_transport_ops fa_ops = {
    SPC_TRANSPORT_OPS_INIT, .open = fa_open, .close = fa_close, .send = fa_send,
    .flush = fa_flush, .poll = fa_poll,
};

static const struct spc_transport_descriptor fa_desc = {
    SPC_TRANSPORT_DESCRIPTOR_INIT,
    .name = "fakeasync",
    .version = "1.0",
    .description = "test transport with asynchronous completion",
    .caps = SPC_TRANSPORT_CAP_ASYNC,
    .options = fa_options,
    .n_options = 1,
    .options_size = sizeof(struct fa_opts),
    .object_size = sizeof(struct fa),
    .max_substreams = 1,
    .ops = &fa_ops,
};

SPC_TRANSPORT_DEFINE(fa_desc)
