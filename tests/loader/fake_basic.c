/* A minimal working fake transport for the loader tests. Built several times:
 * FAKE_NAME names it, FAKE_VERSION tells copies apart, FAKE_OPEN_FAILS makes open fail.
 * Packets are accepted and dropped. open and close log "fake <name> open/close" at error
 * level (with the version) so the tests can see them through the application's log
 * handler. */
#include <errno.h>

#include "speadcast/transport.h"

#ifndef FAKE_NAME
#error "FAKE_NAME is required"
#endif
#ifndef FAKE_VERSION
#define FAKE_VERSION "1.0"
#endif

struct fake {
    struct spc_transport base;
    int opened;
};

static int fake_open(struct spc_transport *t, const void *options,
                     const struct spc_transport_params *params)
{
    (void)options;
    (void)params;
#ifdef FAKE_OPEN_FAILS
    t->svc->set_error(t, "cannot reach the moon from here");
    t->svc->log(t, SPC_LOG_ERROR, "fake %s open failed", FAKE_NAME);
    return -ECONNREFUSED;
#else
    spc_container_of(t, struct fake, base)->opened = 1;
    t->svc->log(t, SPC_LOG_ERROR, "fake %s open, version %s", FAKE_NAME, FAKE_VERSION);
    return 0;
#endif
}

static void fake_close(struct spc_transport *t)
{
    t->svc->log(t, SPC_LOG_ERROR, "fake %s close (opened=%d)", FAKE_NAME,
                spc_container_of(t, struct fake, base)->opened);
}

static int fake_send(struct spc_transport *t, struct spc_tx_batch *b)
{
    (void)t;
    for (size_t i = 0; i < b->n_packets; i++)
        spc_tx_batch_packet(b, i)->status = 0;
    return 0;
}

static const struct spc_transport_ops fake_ops = {
    SPC_TRANSPORT_OPS_INIT,
    .open = fake_open,
    .close = fake_close,
    .send = fake_send,
};

static const struct spc_transport_descriptor fake_desc = {
    SPC_TRANSPORT_DESCRIPTOR_INIT,
    .name = FAKE_NAME,
    .version = FAKE_VERSION,
    .description = "loader test transport",
    .object_size = sizeof(struct fake),
    .max_substreams = 1,
    .ops = &fake_ops,
};

SPC_TRANSPORT_DEFINE(fake_desc)
