/* The built-in "bytes" transport (spead2's BytesStream): every packet is appended to one
 * growable memory buffer, so the stream's output can be inspected or written out.
 * Registered statically through the same descriptor and checks as plugins.
 *
 * Invariant: len <= cap, and buf holds exactly the bytes of the packets whose status was 0,
 * in sending order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/speadcast.h" /* SPC_VERSION_STRING */
#include "transport_bytes.h"

struct bytes_options {
    uint64_t initial_capacity;
    uint64_t max_size;
};

struct bytes_transport {
    struct spc_transport base;
    uint8_t *buf;
    size_t len, cap;
    size_t max_size; /* 0 = unlimited */
};

static const struct spc_option bytes_options[] = {
    {SPC_OPTION_INIT, .name = "initial_capacity", .type = SPC_OPT_UINT,
     .offset = offsetof(struct bytes_options, initial_capacity),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MAX, .def.u = 65536, .max.u = 1u << 30,
     .help = "bytes reserved when the transport opens (the buffer grows as needed)"},
    {SPC_OPTION_INIT, .name = "max_size", .type = SPC_OPT_UINT,
     .offset = offsetof(struct bytes_options, max_size), .flags = SPC_OPT_DEFAULT, .def.u = 0,
     .help = "largest total size in bytes; a packet that would exceed it fails with ENOSPC; 0 = unlimited"},
};

static int bytes_open(struct spc_transport *t, const void *options,
                      const struct spc_transport_params *params)
{
    (void)params;
    struct bytes_transport *b = spc_container_of(t, struct bytes_transport, base);
    const struct bytes_options *o = options;
    if (o->max_size > SIZE_MAX) {
        t->svc->set_error(t, "bytes: max_size %llu is too large for this machine",
                          (unsigned long long)o->max_size);
        return -SPC_ECONFIG;
    }
    b->max_size = (size_t)o->max_size;
    b->cap = (size_t)o->initial_capacity;
    if (b->cap && !(b->buf = malloc(b->cap))) {
        t->svc->set_error(t, "bytes: cannot reserve %zu bytes", b->cap);
        return -ENOMEM;
    }
    t->n_substreams = 1;
    return 0;
}

static void bytes_close(struct spc_transport *t)
{
    struct bytes_transport *b = spc_container_of(t, struct bytes_transport, base);
    free(b->buf);
    b->buf = NULL;
}

static int bytes_reserve(struct bytes_transport *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra)
        cap *= 2;
    uint8_t *nb = realloc(b->buf, cap);
    if (!nb)
        return -ENOMEM;
    b->buf = nb;
    b->cap = cap;
    return 0;
}

static int bytes_send(struct spc_transport *t, struct spc_tx_batch *batch)
{
    struct bytes_transport *b = spc_container_of(t, struct bytes_transport, base);
    for (size_t i = 0; i < batch->n_packets; i++) {
        struct spc_tx_packet *p = spc_tx_batch_packet(batch, i);
        if (b->max_size && p->size > b->max_size - b->len) {
            t->svc->set_error(t, "bytes: a %zu-byte packet does not fit: %zu of max_size %zu used",
                              p->size, b->len, b->max_size);
            p->status = -ENOSPC;
            continue;
        }
        if (bytes_reserve(b, p->size) < 0) {
            t->svc->set_error(t, "bytes: cannot grow the buffer beyond %zu bytes", b->cap);
            p->status = -ENOMEM;
            continue;
        }
        b->len += spc_tx_packet_gather(p, b->buf + b->len);
        p->status = 0;
    }
    return 0;
}

static const struct spc_transport_ops bytes_ops = {
    SPC_TRANSPORT_OPS_INIT,
    .open = bytes_open,
    .close = bytes_close,
    .send = bytes_send,
};

static const struct spc_transport_descriptor bytes_descriptor = {
    SPC_TRANSPORT_DESCRIPTOR_INIT,
    .name = "bytes",
    .version = SPC_VERSION_STRING,
    .description = "collects the packets back to back in a memory buffer (spead2's BytesStream)",
    .caps = SPC_TRANSPORT_CAP_RELIABLE,
    .options = bytes_options,
    .n_options = sizeof bytes_options / sizeof bytes_options[0],
    .options_size = sizeof(struct bytes_options),
    .object_size = sizeof(struct bytes_transport),
    .max_substreams = 1,
    .ops = &bytes_ops,
};

const struct spc_transport_descriptor *spci_bytes_entry(void)
{
    return &bytes_descriptor;
}

static struct bytes_transport *as_bytes(const struct spc_transport *obj)
{
    if (!obj || obj->desc != &bytes_descriptor)
        return NULL;
    return spc_container_of(obj, struct bytes_transport, base);
}

int spci_bytes_data(const struct spc_transport *obj, const uint8_t **data, size_t *len)
{
    struct bytes_transport *b = as_bytes(obj);
    if (!b)
        return -SPC_ENOTSUP;
    *data = b->buf;
    *len = b->len;
    return 0;
}

int spci_bytes_reset(struct spc_transport *obj)
{
    struct bytes_transport *b = as_bytes(obj);
    if (!b)
        return -SPC_ENOTSUP;
    b->len = 0;
    return 0;
}
