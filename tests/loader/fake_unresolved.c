/* A plugin whose dependency, at run time, lacks a symbol the plugin calls only in send.
 * Linked -z now, so loading must fail with "undefined symbol" instead of the first send
 * crashing. */
#include "speadcast/transport.h"

int spcfakedep_missing(void);

static int u_open(struct spc_transport *t, const void *o, const struct spc_transport_params *p)
{
    (void)t, (void)o, (void)p;
    return 0;
}
static void u_close(struct spc_transport *t) { (void)t; }
static int u_send(struct spc_transport *t, struct spc_tx_batch *b)
{
    (void)t;
    for (size_t i = 0; i < b->n_packets; i++)
        spc_tx_batch_packet(b, i)->status = spcfakedep_missing() - 2;
    return 0;
}

static const struct spc_transport_ops u_ops = {
    SPC_TRANSPORT_OPS_INIT, .open = u_open, .close = u_close, .send = u_send,
};
static const struct spc_transport_descriptor u_desc = {
    SPC_TRANSPORT_DESCRIPTOR_INIT,
    .name = "unresolved",
    .version = "1.0",
    .object_size = sizeof(struct spc_transport),
    .ops = &u_ops,
};
SPC_TRANSPORT_DEFINE(u_desc)
