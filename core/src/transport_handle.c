/* Transport handles (transport_handle.h): a transport opened without a stream, sending
 * synchronously; and the bytes transport's calls on a handle (bytes.h).
 *
 * Invariant: a handle's packets are never left pending when spc_transport_handle_send
 * returns: tokens are sequence numbers, so a completion that arrives late (after a failed
 * flush) is recognised as stale and dropped instead of writing to freed memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_internal.h"
#include "transport_bytes.h"
#include "transport_internal.h"

/* Packets handed to the transport per send call. */
#define HANDLE_CHUNK 64

struct spc_transport_handle {
    struct spci_transport *t;
    uint64_t seq_base;        /* token of status[0] in the current chunk */
    size_t n_chunk;
    size_t pending;
    int status[HANDLE_CHUNK];
};

static void handle_complete(void *ctx, void *token, int status)
{
    struct spc_transport_handle *h = ctx;
    uint64_t seq = (uint64_t)(uintptr_t)token;
    if (seq < h->seq_base || seq - h->seq_base >= h->n_chunk ||
        h->status[seq - h->seq_base] != SPC_TX_PENDING) {
        spci_log(SPC_LOG_ERROR, "%s: stale or duplicate completion dropped", h->t->plugin->name);
        return;
    }
    h->status[seq - h->seq_base] = spci_plugin_rc(status);
    h->pending--;
}

int spc_transport_handle_open(struct spc_transport_handle **out, const struct spc_config *cfg,
                              char *err, size_t errlen)
{
    if (!out || !cfg)
        return -EINVAL;
    struct spc_transport_handle *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->seq_base = 1; /* token 0 would be NULL */
    int rc = spci_transport_open(&h->t, cfg, handle_complete, h, err, errlen);
    if (rc < 0) {
        free(h);
        return rc;
    }
    *out = h;
    return 0;
}

void spc_transport_handle_close(struct spc_transport_handle *h)
{
    if (!h)
        return;
    if (h->t->caps & SPC_TRANSPORT_CAP_ASYNC)
        spci_transport_flush(h->t);
    spci_transport_close(h->t);
    free(h);
}

unsigned spc_transport_handle_n_substreams(const struct spc_transport_handle *h)
{
    return h->t->n_substreams;
}

/* Waits for the chunk's pending packets. Returns when none is pending. */
static void handle_drain(struct spc_transport_handle *h)
{
    if (!h->pending)
        return;
    int rc = spci_transport_flush(h->t);
    if (rc >= 0)
        rc = spci_transport_poll_until_done(h->t, &h->pending);
    if (h->pending) {
        /* The transport broke its flush contract; give up on these packets. */
        spci_log(SPC_LOG_ERROR, "%s: flush returned with %zu packets pending (%s)",
                 h->t->plugin->name, h->pending, spc_strerror(rc));
        for (size_t i = 0; i < h->n_chunk; i++)
            if (h->status[i] == SPC_TX_PENDING)
                h->status[i] = rc < 0 ? rc : -SPC_EPLUGIN;
        h->pending = 0;
    }
}

int spc_transport_handle_send(struct spc_transport_handle *h, const struct spc_packet *pkts,
                              size_t n, uint32_t substream, int *status)
{
    if (!h || (n && !pkts))
        return -EINVAL;
    if (substream >= h->t->n_substreams)
        return -SPC_ESUBSTREAM;
    int first = 0;
    struct spc_tx_packet tx[HANDLE_CHUNK];
    for (size_t start = 0; start < n; start += HANDLE_CHUNK) {
        size_t m = n - start < HANDLE_CHUNK ? n - start : HANDLE_CHUNK;
        h->seq_base += h->n_chunk;
        h->n_chunk = m;
        for (size_t i = 0; i < m; i++) {
            const struct spc_packet *p = &pkts[start + i];
            tx[i] = (struct spc_tx_packet){.iov = p->iov, .n_iov = p->n_iov, .substream = substream,
                                           .size = p->size,
                                           .token = (void *)(uintptr_t)(h->seq_base + i),
                                           .status = SPC_TX_PENDING};
            h->status[i] = SPC_TX_PENDING;
        }
        struct spc_tx_batch b;
        spci_tx_batch_init(&b, tx, m);
        int rc = spci_transport_send(h->t, &b);
        h->pending = 0;
        for (size_t i = 0; i < m; i++) {
            int s = rc < 0 ? rc : tx[i].status;
            if (s == SPC_TX_PENDING && !(h->t->caps & SPC_TRANSPORT_CAP_ASYNC)) {
                spci_log(SPC_LOG_ERROR, "%s: left a packet pending without the async capability",
                         h->t->plugin->name);
                s = -SPC_EPLUGIN;
            } else if (s != SPC_TX_PENDING) {
                s = spci_plugin_rc(s);
            }
            h->status[i] = s;
            h->pending += s == SPC_TX_PENDING;
        }
        handle_drain(h);
        for (size_t i = 0; i < m; i++) {
            if (status)
                status[start + i] = h->status[i];
            if (h->status[i] < 0 && !first)
                first = h->status[i];
        }
    }
    return first;
}

size_t spc_transport_handle_last_error(struct spc_transport_handle *h, char *err, size_t errlen)
{
    if (!h)
        return spci_copy_error("", err, errlen);
    return spci_transport_error(h->t, err, errlen);
}

int spc_bytes_handle_data(const struct spc_transport_handle *h, const uint8_t **data, size_t *len)
{
    if (!h || !data || !len)
        return -EINVAL;
    return spci_bytes_data(h->t->obj, data, len);
}

int spc_bytes_handle_reset(struct spc_transport_handle *h)
{
    if (!h)
        return -EINVAL;
    return spci_bytes_reset(h->t->obj);
}
