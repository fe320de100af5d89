/* The inproc transport: each substream's packets are copied into a named in-process
 * queue (inproc.h), reached through the core services (ABI minor 1), where a receiver in
 * the same process pops them. Several streams may send to one queue.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/transport.h"

struct inproc_options {
    struct spc_string_list queues;
    bool stop_on_close;
};

struct inproc {
    struct spc_transport base;
    struct spc_inproc_queue **queues; /* one reference per substream */
    const char *const *names;         /* the option's, borrowed until close */
    size_t n;
    bool stop_on_close;
};

static const struct spc_option inproc_option_table[] = {
    {SPC_OPTION_INIT, .name = "queues", .type = SPC_OPT_STRINGS,
     .offset = offsetof(struct inproc_options, queues), .flags = SPC_OPT_REQUIRED,
     .min_count = 1, .item_min_length = 1, .item_max_length = SPC_INPROC_NAME_MAX,
     .help = "queue names, one per substream (1 to 255 bytes each); a queue that does not "
             "exist yet is created"},
    {SPC_OPTION_INIT, .name = "stop_on_close", .type = SPC_OPT_BOOL,
     .offset = offsetof(struct inproc_options, stop_on_close), .flags = SPC_OPT_DEFAULT,
     .def.b = false,
     .help = "stop every queue when the stream closes, telling receivers the stream ended "
             "(leave false when other streams still send to the queues)"},
};

static void release_all(struct inproc *ip)
{
    for (size_t i = 0; i < ip->n; i++)
        ip->base.svc->inproc_queue_close(ip->queues[i]);
    free(ip->queues);
    ip->queues = NULL;
    ip->n = 0;
}

static int inproc_open(struct spc_transport *t, const void *options,
                       const struct spc_transport_params *params)
{
    (void)params;
    struct inproc *ip = spc_container_of(t, struct inproc, base);
    const struct inproc_options *o = options;
    if (!SPC_HAS_FIELD(t->svc, struct spc_core_services, inproc_queue_stop)) {
        t->svc->set_error(t, "the core (transport ABI minor %u) has no inproc queues: "
                             "minor 1 or later is needed", (unsigned)t->svc->abi_minor);
        return -SPC_ENOTSUP;
    }
    if (o->queues.n == 0) {
        t->svc->set_error(t, "queues is empty: name one queue per substream");
        return -SPC_ECONFIG;
    }
    ip->queues = calloc(o->queues.n, sizeof *ip->queues);
    if (!ip->queues) {
        t->svc->set_error(t, "out of memory for %zu queues", o->queues.n);
        return -ENOMEM;
    }
    for (size_t i = 0; i < o->queues.n; i++) {
        int rc = t->svc->inproc_queue_open(&ip->queues[i], o->queues.items[i]);
        if (rc < 0) {
            t->svc->set_error(t, "queues[%zu] \"%s\": %s", i, o->queues.items[i],
                              t->svc->strerror(rc));
            release_all(ip);
            return rc;
        }
        ip->n++;
    }
    ip->names = o->queues.items;
    ip->stop_on_close = o->stop_on_close;
    t->n_substreams = (uint32_t)ip->n;
    return 0;
}

static void inproc_close(struct spc_transport *t)
{
    struct inproc *ip = spc_container_of(t, struct inproc, base);
    if (ip->stop_on_close)
        for (size_t i = 0; i < ip->n; i++)
            t->svc->inproc_queue_stop(ip->queues[i]);
    release_all(ip);
}

static int inproc_send(struct spc_transport *t, struct spc_tx_batch *b)
{
    struct inproc *ip = spc_container_of(t, struct inproc, base);
    for (size_t i = 0; i < b->n_packets; i++) {
        struct spc_tx_packet *p = spc_tx_batch_packet(b, i);
        p->status = t->svc->inproc_queue_pushv(ip->queues[p->substream], p->iov, p->n_iov);
        if (p->status < 0)
            t->svc->set_error(t, "substream %u (queue \"%s\"): %s", (unsigned)p->substream,
                              ip->names[p->substream], t->svc->strerror(p->status));
    }
    return 0;
}

static const struct spc_transport_ops inproc_ops = {
    SPC_TRANSPORT_OPS_INIT,
    .open = inproc_open,
    .close = inproc_close,
    .send = inproc_send,
};

static const struct spc_transport_descriptor inproc_descriptor = {
    SPC_TRANSPORT_DESCRIPTOR_INIT,
    .name = "inproc",
    .version = "1.0.0",
    .description = "named in-process packet queues, one per substream, for a receiver in "
                   "the same process",
    .caps = SPC_TRANSPORT_CAP_RELIABLE,
    .options = inproc_option_table,
    .n_options = sizeof inproc_option_table / sizeof inproc_option_table[0],
    .options_size = sizeof(struct inproc_options),
    .object_size = sizeof(struct inproc),
    .max_substreams = 0,
    .ops = &inproc_ops,
};

SPC_TRANSPORT_DEFINE(inproc_descriptor)
