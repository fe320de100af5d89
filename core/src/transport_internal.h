/* Core-internal view of transports: loaded plugins, opened transport instances, and the
 * pieces of the config that the stream code needs. The send stream (stream.c) builds on
 * spci_transport_*; the public spc_transport_handle_* API in transport.c is a thin
 * synchronous wrapper over the same calls.
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

/* ---------------------------------------------------------------- plugins (loader.c) */

/* A transport that loaded and passed every check. Lives until the process exits;
 * immutable after loading, so it may be read from any thread without a lock. */
struct spci_plugin {
    const struct spc_transport_descriptor *desc;
    struct spc_transport_ops ops; /* full table: optional gaps filled with -SPC_ENOTSUP stubs */
    char *name;
    char *path;                   /* module file; NULL for a built-in */
    size_t option_stride;         /* desc->options[0].struct_size, or 0 */
    struct spci_plugin *next;
};

/* Finds and loads (once) the transport called name along the search path for
 * plugin_path (NULL-terminated, may be NULL). On failure the text lists the files tried,
 * the reason for each, and the transports available. Thread-safe.
 * Errors: -SPC_EPLUGIN, -SPC_ECONFIG (invalid name), -ENOMEM. */
int spci_plugin_find(const char *name, const char *const *plugin_path,
                     const struct spci_plugin **out, char *err, size_t errlen);

/* 0 when name is a valid transport name ([A-Za-z0-9_-]{1,64}), else -EINVAL. */
int spci_transport_name_check(const char *name);

/* Built-in transports (transport_bytes.c). */
const struct spc_transport_descriptor *spci_bytes_entry(void);

/* ---------------------------------------------------------------- options (config.c) */

/* Checks a plugin's option table (names, types, bounds, defaults, offsets). */
int spci_option_table_check(const struct spc_transport_descriptor *d, char *err, size_t errlen);

/* The typed options struct of one opened transport and the strings/lists it points to. */
struct spci_options;

/* Builds the typed options for cfg's transport (defaults, then the config's values),
 * checking required options and list lengths. *opts_out is NULL when the transport
 * declares no options struct. Free with spci_options_free. */
int spci_options_build(const struct spc_config *cfg, struct spci_options **out,
                       void **opts_out, char *err, size_t errlen);
void spci_options_free(struct spci_options *o);

/* The resolved transport of a config (never NULL for a config that was created). */
const struct spci_plugin *spci_config_plugin(const struct spc_config *cfg);

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

/* Hot-path calls: straight through the full ops table (see transport.h for contracts).
 * The caller guarantees every packet's substream < t->n_substreams. */
static inline int spci_transport_send(struct spci_transport *t, struct spc_tx_batch *b)
{
    return t->ops->send(t->obj, b);
}
static inline int spci_transport_flush(struct spci_transport *t) { return t->ops->flush(t->obj); }
static inline int spci_transport_poll(struct spci_transport *t) { return t->ops->poll(t->obj); }
static inline int spci_transport_get_fd(struct spci_transport *t) { return t->ops->get_fd(t->obj); }
static inline int spci_transport_register_memory(struct spci_transport *t, void *addr, size_t len,
                                                 void **handle)
{
    return t->ops->register_memory(t->obj, addr, len, handle);
}
static inline int spci_transport_deregister_memory(struct spci_transport *t, void *handle)
{
    return t->ops->deregister_memory(t->obj, handle);
}

/* Whether the transport paces the stream in hardware (svc->set_hw_paced): as open left
 * it, until the transport withdraws it. Any thread. */
static inline bool spci_transport_hw_paced(const struct spci_transport *t)
{
    return atomic_load_explicit(&t->hw_paced, memory_order_relaxed);
}

/* Copies the last error text (thread-safe; "" when none). */
size_t spci_transport_error(struct spci_transport *t, char *buf, size_t len);
/* Sets the last error text from core code (same slot plugins write). */
void spci_transport_set_error(struct spci_transport *t, const char *fmt, ...)
    SPC_PRINTF_FMT(2, 3);

/* The core services table given to every plugin. */
extern const struct spc_core_services spci_core_services;

/* ---------------------------------------------------------------- bytes transport */

/* The bytes collected by a bytes-transport instance (borrowed until its next send or
 * close), and emptying it. -SPC_ENOTSUP when t is another transport. */
int spci_bytes_data(const struct spci_transport *t, const uint8_t **data, size_t *len);
int spci_bytes_reset(struct spci_transport *t);

#endif
