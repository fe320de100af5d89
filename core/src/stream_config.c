/* The "stream" section of a config (stream_config.h): its option table, built from the
 * named defaults, so that it is validated and printed as JSON Schema by the same code as
 * transport options; and spc_stream_config_check for sections built in C. */
#include <errno.h>
#include <math.h>

#include "options.h"
#include "sized.h"
#include "stream_config_internal.h"

/* The stream section as an option table over a mirror struct, so it is validated and
 * printed as schema by the same code as transport options. */
struct stream_mirror {
    uint64_t max_packet_size;
    double rate;
    uint64_t burst_size;
    uint64_t max_heaps;
    double burst_rate_ratio;
    int rate_method;
    int on_full;
    uint64_t heap_address_bits;
    uint64_t bug_compat;
    uint64_t writer_threads;
};

#define SM(f) offsetof(struct stream_mirror, f)
static const char *const rate_methods[] = {[SPC_RATE_METHOD_SW] = "sw", [SPC_RATE_METHOD_HW] = "hw",
                                           [SPC_RATE_METHOD_AUTO] = "auto", NULL};
static const char *const on_full_modes[] = {[SPC_ON_FULL_FAIL] = "fail", [SPC_ON_FULL_BLOCK] = "block", NULL};

const char *const *spc_rate_method_names(void)
{
    return rate_methods;
}

const char *const *spc_on_full_names(void)
{
    return on_full_modes;
}

static const struct spc_option flavour_fields[] = {
    {SPC_OPTION_INIT, .name = "heap_address_bits", .type = SPC_OPT_UINT, .offset = SM(heap_address_bits),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = SPC_FLAVOUR_DEFAULT_HEAP_ADDRESS_BITS, .min.u = 8, .max.u = 56,
     .multiple_of = 8, .help = "bits of a heap address (SPEAD-64-<bits>); item IDs get 63 - bits"},
    {SPC_OPTION_INIT, .name = "bug_compat", .type = SPC_OPT_UINT, .offset = SM(bug_compat),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 0, .min.u = 0, .max.u = 7,
     .help = "PySPEAD 0.5.2 compatibility flags: 1 descriptor widths, 2 shape bit 1, 4 swap endian"},
};

static const struct spc_option stream_options[] = {
    {SPC_OPTION_INIT, .name = "max_packet_size", .type = SPC_OPT_UINT, .offset = SM(max_packet_size),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = SPC_STREAM_DEFAULT_MAX_PACKET_SIZE, .min.u = SPC_MIN_PACKET_SIZE,
     .max.u = SPC_STREAM_MAX_PACKET_SIZE, .help = "largest packet in bytes, SPEAD header included"},
    {SPC_OPTION_INIT, .name = "rate", .type = SPC_OPT_DOUBLE, .offset = SM(rate),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN, .def.d = SPC_STREAM_DEFAULT_RATE, .min.d = 0.0,
     .help = "sending rate in bytes per second; 0 = unlimited"},
    {SPC_OPTION_INIT, .name = "burst_size", .type = SPC_OPT_UINT, .offset = SM(burst_size),
     .flags = SPC_OPT_DEFAULT, .def.u = SPC_STREAM_DEFAULT_BURST_SIZE, .help = "bytes sent back to back before the rate limiter sleeps"},
    {SPC_OPTION_INIT, .name = "max_heaps", .type = SPC_OPT_UINT, .offset = SM(max_heaps),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = SPC_STREAM_DEFAULT_MAX_HEAPS, .min.u = 1, .max.u = 1048576,
     .help = "heaps that may be queued or in flight at once"},
    {SPC_OPTION_INIT, .name = "burst_rate_ratio", .type = SPC_OPT_DOUBLE, .offset = SM(burst_rate_ratio),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN, .def.d = SPC_STREAM_DEFAULT_BURST_RATE_RATIO, .min.d = 1.0,
     .help = "how much faster than rate the limiter may go to catch up"},
    {SPC_OPTION_INIT, .name = "rate_method", .type = SPC_OPT_ENUM, .offset = SM(rate_method),
     .flags = SPC_OPT_DEFAULT, .def.s = "auto" /* rate_methods[SPC_STREAM_DEFAULT_RATE_METHOD] */, .choices = rate_methods,
     .help = "sw: the software rate limiter; hw: the transport paces where it reports at open "
             "that it can, otherwise the software limiter with a warning (never an error); "
             "auto: the software limiter"},
    {SPC_OPTION_INIT, .name = "on_full", .type = SPC_OPT_ENUM, .offset = SM(on_full),
     .flags = SPC_OPT_DEFAULT, .def.s = "fail" /* on_full_modes[SPC_STREAM_DEFAULT_ON_FULL] */, .choices = on_full_modes,
     .help = "when the queue is full: fail at once, or block until there is room"},
    {SPC_OPTION_INIT, .name = "flavour", .type = SPC_OPT_OBJECT, .fields = flavour_fields,
     .n_fields = sizeof flavour_fields / sizeof flavour_fields[0], .help = "SPEAD flavour"},
    {SPC_OPTION_INIT, .name = "writer_threads", .type = SPC_OPT_UINT, .offset = SM(writer_threads),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = SPC_STREAM_DEFAULT_WRITER_THREADS,
     .min.u = 1, .max.u = SPC_STREAM_MAX_WRITER_THREADS,
     .help = "writer threads sharing the substreams (transports that allow it, e.g. udp; "
             "at most one per substream)"},
};

static const struct spci_table stream_table = {stream_options, sizeof stream_options / sizeof stream_options[0],
                                          sizeof(struct spc_option)};

static void mirror_to_config(const struct stream_mirror *m, struct spc_stream_config *c)
{
    c->max_packet_size = (size_t)m->max_packet_size;
    c->rate = m->rate;
    c->burst_size = (size_t)m->burst_size;
    c->max_heaps = (size_t)m->max_heaps;
    c->burst_rate_ratio = m->burst_rate_ratio;
    c->rate_method = (enum spc_rate_method)m->rate_method;
    c->on_full = (enum spc_on_full)m->on_full;
    c->flavour.heap_address_bits = (unsigned)m->heap_address_bits;
    c->flavour.bug_compat = (unsigned)m->bug_compat;
    c->writer_threads = (unsigned)m->writer_threads;
}

json_t *spci_stream_section_json(const struct spc_stream_config *c)
{
    return json_pack("{s:I, s:f, s:I, s:I, s:f, s:s, s:s, s:{s:I, s:I}, s:I}",
                     "max_packet_size", (json_int_t)c->max_packet_size, "rate", c->rate,
                     "burst_size", (json_int_t)c->burst_size, "max_heaps", (json_int_t)c->max_heaps,
                     "burst_rate_ratio", c->burst_rate_ratio,
                     "rate_method", rate_methods[c->rate_method],
                     "on_full", on_full_modes[c->on_full], "flavour",
                     "heap_address_bits", (json_int_t)c->flavour.heap_address_bits,
                     "bug_compat", (json_int_t)c->flavour.bug_compat,
                     "writer_threads", (json_int_t)c->writer_threads);
}

int spc_stream_config_check(const struct spc_stream_config *given, char *err, size_t errlen)
{
    if (!given)
        return -EINVAL;
    struct spc_stream_config full = SPC_STREAM_CONFIG_DEFAULT, *c = &full;
    if (spci_sized_in(&full, given, sizeof full) < 0)
        return spci_cfg_fail(err, errlen, "stream.struct_size: %u is too small", (unsigned)given->struct_size);
    if (!isfinite(c->rate))
        return spci_cfg_fail(err, errlen, "stream.rate: not a finite number");
    if (!isfinite(c->burst_rate_ratio))
        return spci_cfg_fail(err, errlen, "stream.burst_rate_ratio: not a finite number");
    if ((unsigned)c->rate_method > SPC_RATE_METHOD_AUTO)
        return spci_cfg_fail(err, errlen, "stream.rate_method: %d is not a valid rate method", (int)c->rate_method);
    if ((unsigned)c->on_full > SPC_ON_FULL_BLOCK)
        return spci_cfg_fail(err, errlen, "stream.on_full: %d is not a valid on_full mode", (int)c->on_full);
    const size_t big = (size_t)INT64_MAX;
    if (c->max_packet_size > big || c->burst_size > big || c->max_heaps > big)
        return spci_cfg_fail(err, errlen, "stream: size above 2^63-1");
    json_t *j = spci_stream_section_json(c);
    if (!j)
        return -ENOMEM;
    struct spci_sink sk = {0};
    int rc = spci_apply_table(&stream_table, j, "stream", &sk, err, errlen);
    json_decref(j);
    return rc;
}

const struct spci_table *spci_stream_section_table(void)
{
    return &stream_table;
}

int spci_stream_section_parse(const json_t *js, struct spc_stream_config *out, char *err, size_t errlen)
{
    struct stream_mirror m;
    struct spci_sink sk = {.dst = (unsigned char *)&m};
    int rc = spci_apply_table(&stream_table, js, "stream", &sk, err, errlen);
    if (rc == 0) {
        *out = SPC_STREAM_CONFIG_DEFAULT;
        mirror_to_config(&m, out);
    }
    return rc;
}
