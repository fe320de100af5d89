/* "optdemo": a working fake transport that declares one option of every type, for the
 * config tests and the corpus (tests/configs). open writes what it received, typed, into
 * the last-error text so tests can read it back through spc_transport_handle_last_error, and
 * opens one substream per endpoint. Packets are accepted and dropped. */
#include <stdio.h>
#include <string.h>

#include "speadcast/transport.h"

struct od_opts {
    struct spc_endpoint_list endpoints;
    uint64_t buffer_size;
    int64_t offset;
    uint64_t ttl;
    double ratio;
    bool gso;
    const char *interface_address;
    int mode;
    struct spc_string_list queues;
    uint64_t batch;
    bool busy_poll;
    uint64_t step;
};

static const char *const od_modes[] = {"blocking", "async", NULL};

static const struct spc_option od_tuning[] = {
    {SPC_OPTION_INIT, .name = "batch", .type = SPC_OPT_UINT, .offset = offsetof(struct od_opts, batch),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 64, .min.u = 1, .max.u = 1024,
     .help = "packets per call"},
    {SPC_OPTION_INIT, .name = "busy_poll", .type = SPC_OPT_BOOL, .offset = offsetof(struct od_opts, busy_poll),
     .flags = SPC_OPT_DEFAULT, .def.b = false, .help = "spin instead of sleeping"},
};

static const struct spc_option od_options[] = {
    {SPC_OPTION_INIT, .name = "endpoints", .type = SPC_OPT_ENDPOINTS,
     .offset = offsetof(struct od_opts, endpoints), .flags = SPC_OPT_REQUIRED, .min_count = 1,
     .max_count = 4, .help = "destinations, one substream each"},
    {SPC_OPTION_INIT, .name = "buffer_size", .type = SPC_OPT_UINT, .offset = offsetof(struct od_opts, buffer_size),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MAX, .def.u = 524288, .max.u = 1073741824,
     .help = "socket buffer in bytes; 0 = OS default"},
    {SPC_OPTION_INIT, .name = "offset", .type = SPC_OPT_INT, .offset = offsetof(struct od_opts, offset),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.i = 0, .min.i = -100, .max.i = 100,
     .help = "a signed value"},
    {SPC_OPTION_INIT, .name = "ttl", .type = SPC_OPT_UINT, .offset = offsetof(struct od_opts, ttl),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MAX, .def.u = 1, .max.u = 255, .help = "multicast TTL"},
    {SPC_OPTION_INIT, .name = "ratio", .type = SPC_OPT_DOUBLE, .offset = offsetof(struct od_opts, ratio),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.d = 0.5, .min.d = 0.0, .max.d = 1.0,
     .help = "a fraction"},
    {SPC_OPTION_INIT, .name = "gso", .type = SPC_OPT_BOOL, .offset = offsetof(struct od_opts, gso),
     .flags = SPC_OPT_DEFAULT, .def.b = true, .help = "use segmentation offload"},
    {SPC_OPTION_INIT, .name = "interface_address", .type = SPC_OPT_STRING,
     .offset = offsetof(struct od_opts, interface_address), .min_count = 1, .max_count = 45,
     .help = "source address to bind"},
    {SPC_OPTION_INIT, .name = "mode", .type = SPC_OPT_ENUM, .offset = offsetof(struct od_opts, mode),
     .flags = SPC_OPT_DEFAULT, .def.s = "blocking", .choices = od_modes, .help = "connect mode"},
    {SPC_OPTION_INIT, .name = "queues", .type = SPC_OPT_STRINGS, .offset = offsetof(struct od_opts, queues),
     .max_count = 8, .help = "queue names"},
    {SPC_OPTION_INIT, .name = "tuning", .type = SPC_OPT_OBJECT, .fields = od_tuning,
     .n_fields = sizeof od_tuning / sizeof od_tuning[0], .help = "performance knobs"},
    {SPC_OPTION_INIT, .name = "step", .type = SPC_OPT_UINT, .offset = offsetof(struct od_opts, step),
     .flags = SPC_OPT_DEFAULT, .def.u = 8, .multiple_of = 4, .help = "a multiple of 4"},
};

static int od_open(struct spc_transport *t, const void *options, const struct spc_transport_params *p)
{
    const struct od_opts *o = options;
    char s[480];
    size_t off = 0;
#define ADD(...) off += (size_t)snprintf(s + off, off < sizeof s ? sizeof s - off : 0, __VA_ARGS__)
    ADD("endpoints=");
    for (size_t i = 0; i < o->endpoints.n; i++)
        ADD("%s%s/%u", i ? "," : "", o->endpoints.items[i]->host, (unsigned)o->endpoints.items[i]->port);
    ADD(";buffer_size=%llu;offset=%lld;ttl=%llu;ratio=%g;gso=%d;interface_address=%s;mode=%s;queues=",
        (unsigned long long)o->buffer_size, (long long)o->offset, (unsigned long long)o->ttl, o->ratio,
        (int)o->gso, o->interface_address ? o->interface_address : "(null)", od_modes[o->mode]);
    for (size_t i = 0; i < o->queues.n; i++)
        ADD("%s%s", i ? "," : "", o->queues.items[i]);
    ADD(";batch=%llu;busy_poll=%d;step=%llu;mps=%zu", (unsigned long long)o->batch, (int)o->busy_poll,
        (unsigned long long)o->step, p->max_packet_size);
#undef ADD
    t->svc->set_error(t, "%s", s);
    t->n_substreams = (uint32_t)o->endpoints.n;
    return 0;
}

static void od_close(struct spc_transport *t) { (void)t; }

static int od_send(struct spc_transport *t, struct spc_tx_batch *b)
{
    (void)t;
    for (size_t i = 0; i < b->n_packets; i++)
        spc_tx_batch_packet(b, i)->status = 0;
    return 0;
}

static const struct spc_transport_ops od_ops = {
    SPC_TRANSPORT_OPS_INIT, .open = od_open, .close = od_close, .send = od_send,
};

static const struct spc_transport_descriptor od_desc = {
    SPC_TRANSPORT_DESCRIPTOR_INIT,
    .name = "optdemo",
    .version = "2.3.4",
    .description = "test transport declaring one option of every type",
    .options = od_options,
    .n_options = sizeof od_options / sizeof od_options[0],
    .options_size = sizeof(struct od_opts),
    .object_size = sizeof(struct spc_transport),
    .max_substreams = 4,
    .ops = &od_ops,
};

SPC_TRANSPORT_DEFINE(od_desc)
