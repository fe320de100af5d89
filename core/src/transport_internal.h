/* Core-internal: opened transport instances (transport.c). The send stream (stream.c)
 * builds on spci_transport_*; the public spc_transport_handle_* API (transport_handle.c)
 * is a thin synchronous wrapper over the same calls.
 */
#ifndef SPC_TRANSPORT_INTERNAL_H
#define SPC_TRANSPORT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "speadcast/speadcast.h"
#include "speadcast/transport.h"
#include "error_internal.h"
#include "loader.h"
#include "options.h"

/* ---------------------------------------------------------------- instances (transport.c) */

/* Called by svc->complete for a packet the transport left SPC_TX_PENDING. Runs on the
 * thread that called send/poll/flush/close on the instance. */
typedef void (*spci_complete_fn)(void *ctx, void *token, int status);

/* One opened transport. Fields are read-only for users of this header. */
struct spci_transport {
    const struct spci_plugin *plugin;
    const struct spc_transport_ops *ops; /* = &plugin->ops: never NULL entries */
    struct spc_transport *obj;           /* the plugin's per-stream object */
    unsigned n_substreams;
    uint32_t caps;
    spci_complete_fn on_complete;
    void *ctx;
    struct spci_options *options;
    bool opened;                         /* open returned 0 (set by the opener) */
    _Atomic bool hw_paced;               /* svc->set_hw_paced: the transport paces */
    pthread_mutex_t err_lock;            /* set_error may come from plugin threads */
    char last_error[512];
};

/* Opens cfg's transport: builds the typed options, allocates the plugin object and calls
 * open with params derived from cfg's stream section. on_complete (may be NULL for a
 * transport without SPC_TRANSPORT_CAP_ASYNC) receives asynchronous completions.
 * Errors: those of spci_options_build, -ENOMEM, or open's own code with its detail text
 * in err. */
int spci_transport_open(struct spci_transport **out, const struct spc_config *cfg,
                        spci_complete_fn on_complete, void *ctx, char *err, size_t errlen);

/* Calls the plugin's close (which completes anything still pending with an error) and
 * frees the instance. Callers that want pending packets sent call flush first. */
void spci_transport_close(struct spci_transport *t);

/* Sets up a batch over n packets in a contiguous array. */
static inline void spci_tx_batch_init(struct spc_tx_batch *b, struct spc_tx_packet *pkts,
                                      size_t n)
{
    b->struct_size = sizeof(*b);
    b->packet_size = sizeof(struct spc_tx_packet);
    b->n_packets = n;
    b->packets = pkts;
}

/* The one place a plugin's positive return is mapped: the ABI allows 0 or a negative
 * code (poll's count aside), so a positive value from send, flush, open, memory
 * registration or a packet status is a plugin bug, reported as -SPC_EPLUGIN rather than
 * taken for success. */
static inline int spci_plugin_rc(int rc)
{
    return rc > 0 ? -SPC_EPLUGIN : rc;
}

/* Hot-path calls: straight through the full ops table (see transport.h for contracts),
 * positive returns mapped by spci_plugin_rc (poll returns a count).
 * The caller guarantees every packet's substream < t->n_substreams. */
static inline int spci_transport_send(struct spci_transport *t, struct spc_tx_batch *b)
{
    return spci_plugin_rc(t->ops->send(t->obj, b));
}
static inline int spci_transport_flush(struct spci_transport *t)
{
    return spci_plugin_rc(t->ops->flush(t->obj));
}
static inline int spci_transport_poll(struct spci_transport *t) { return t->ops->poll(t->obj); }
static inline int spci_transport_get_fd(struct spci_transport *t) { return t->ops->get_fd(t->obj); }
static inline int spci_transport_register_memory(struct spci_transport *t, void *addr, size_t len,
                                                 void **handle)
{
    return spci_plugin_rc(t->ops->register_memory(t->obj, addr, len, handle));
}
static inline int spci_transport_deregister_memory(struct spci_transport *t, void *handle)
{
    return spci_plugin_rc(t->ops->deregister_memory(t->obj, handle));
}

/* Whether the transport paces the stream in hardware (svc->set_hw_paced): as open left
 * it, until the transport withdraws it. Any thread. */
static inline bool spci_transport_hw_paced(const struct spci_transport *t)
{
    return atomic_load_explicit(&t->hw_paced, memory_order_relaxed);
}

/* Polls t until *pending (the caller's count of packets the transport left pending,
 * decremented by its completion callback) is 0, sleeping 50 us after a poll that
 * completes nothing. Returns 0, or poll's error (packets may then still be pending). */
int spci_transport_poll_until_done(struct spci_transport *t, const size_t *pending);

/* Copies the last error text (thread-safe; "" when none). */
size_t spci_transport_error(struct spci_transport *t, char *buf, size_t len);
/* Sets the last error text from core code (same slot plugins write). */
void spci_transport_set_error(struct spci_transport *t, const char *fmt, ...)
    SPC_PRINTF_FMT(2, 3);

/* The core services table given to every plugin. */
extern const struct spc_core_services spci_core_services;

#endif
