/* Deliberately broken fake plugins; FAKE_BREAK selects the fault:
 *   1 no entry symbol at all            2 only spc_transport_entry_v2 (wrong ABI major)
 *   3 descriptor struct_size too short  4 mandatory op send is NULL
 *   5 async capability without poll     6 object_size smaller than the base
 *   7 bad option table (default outside its bounds) */
#include <stdint.h>

#include "speadcast/transport.h"

#ifndef FAKE_NAME
#error "FAKE_NAME is required"
#endif

static int b_open(struct spc_transport *t, const void *o, const struct spc_transport_params *p)
{
    (void)t, (void)o, (void)p;
    return 0;
}
static void b_close(struct spc_transport *t) { (void)t; }
#if FAKE_BREAK != 4
static int b_send(struct spc_transport *t, struct spc_tx_batch *b)
{
    (void)t, (void)b;
    return 0;
}
#endif
static int b_flush(struct spc_transport *t)
{
    (void)t;
    return 0;
}

static const struct spc_transport_ops b_ops = {
    SPC_TRANSPORT_OPS_INIT,
    .open = b_open,
    .close = b_close,
#if FAKE_BREAK != 4
    .send = b_send,
#endif
    .flush = b_flush,
};

#if FAKE_BREAK == 7
struct b_opts {
    uint64_t level;
};
static const struct spc_option b_options[] = {
    {SPC_OPTION_INIT, .name = "level", .type = SPC_OPT_UINT, .offset = offsetof(struct b_opts, level),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MAX, .def.u = 11, .max.u = 10, .help = "goes to eleven"},
};
#endif

static const struct spc_transport_descriptor b_desc = {
#if FAKE_BREAK == 3
    .struct_size = 24, /* as if built against a header with a smaller descriptor */
    .abi_major = SPC_TRANSPORT_ABI_MAJOR,
#else
    SPC_TRANSPORT_DESCRIPTOR_INIT,
#endif
    .name = FAKE_NAME,
    .version = "0.0",
#if FAKE_BREAK == 5
    .caps = SPC_TRANSPORT_CAP_ASYNC,
#endif
#if FAKE_BREAK == 6
    .object_size = 8,
#else
    .object_size = sizeof(struct spc_transport),
#endif
#if FAKE_BREAK == 7
    .options = b_options,
    .n_options = 1,
    .options_size = sizeof(struct b_opts),
#endif
    .ops = &b_ops,
};

#if FAKE_BREAK == 1
/* Exports nothing: the version script hides everything but spc_transport_entry_v*. */
const struct spc_transport_descriptor *fake_descriptor(void);
const struct spc_transport_descriptor *fake_descriptor(void) { return &b_desc; }
#elif FAKE_BREAK == 2
SPC_TRANSPORT_EXPORT const struct spc_transport_descriptor *spc_transport_entry_v2(void);
SPC_TRANSPORT_EXPORT const struct spc_transport_descriptor *spc_transport_entry_v2(void)
{
    return &b_desc;
}
#else
SPC_TRANSPORT_DEFINE(b_desc)
#endif
