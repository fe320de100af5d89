/* Opened transports: the core services table and spci_transport_* (used by the send
 * stream and by transport handles).
 *
 * Invariants:
 * - obj->core points to the owning struct spci_transport for the object's whole life.
 * - close runs if and only if open returned 0.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log_internal.h"
#include "clock.h"
#include "config_internal.h"
#include "transport_internal.h"

/* ------------------------------------------------------------ core services */

static struct spci_transport *core_of(struct spc_transport *t)
{
    return t ? (struct spci_transport *)t->core : NULL;
}

static void svc_vlog(struct spc_transport *t, int level, const char *fmt, va_list ap)
{
    if (!spci_log_enabled(level))
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (t && t->desc)
        spci_log(level, "%s: %s", t->desc->name, msg);
    else
        spci_log(level, "%s", msg);
}

static void svc_log(struct spc_transport *t, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    svc_vlog(t, level, fmt, ap);
    va_end(ap);
}

static void vset_error(struct spci_transport *c, const char *fmt, va_list ap)
{
    char msg[sizeof c->last_error];
    vsnprintf(msg, sizeof msg, fmt, ap);
    pthread_mutex_lock(&c->err_lock);
    memcpy(c->last_error, msg, sizeof msg);
    pthread_mutex_unlock(&c->err_lock);
    spci_log(SPC_LOG_DEBUG, "%s: %s", c->plugin->name, msg);
}

static void svc_set_error(struct spc_transport *t, const char *fmt, ...)
{
    struct spci_transport *c = core_of(t);
    if (!c)
        return;
    va_list ap;
    va_start(ap, fmt);
    vset_error(c, fmt, ap);
    va_end(ap);
}

void spci_transport_set_error(struct spci_transport *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset_error(t, fmt, ap);
    va_end(ap);
}

size_t spci_transport_error(struct spci_transport *t, char *buf, size_t len)
{
    pthread_mutex_lock(&t->err_lock);
    size_t n = spci_copy_error(t->last_error, buf, len);
    pthread_mutex_unlock(&t->err_lock);
    return n;
}

static uint64_t svc_clock_ns(void)
{
    return spci_monotonic_ns();
}

static void svc_complete(struct spc_transport *t, void *token, int status)
{
    struct spci_transport *c = core_of(t);
    if (c && c->on_complete)
        c->on_complete(c->ctx, token, status);
    else
        spci_log(SPC_LOG_ERROR, "%s: completion reported but nobody is waiting for it",
                 t && t->desc ? t->desc->name : "transport");
}

static void svc_set_hw_paced(struct spc_transport *t, bool hw_paced)
{
    struct spci_transport *c = core_of(t);
    if (!c)
        return;
    if (!c->opened) {
        if (hw_paced && !(c->caps & SPC_TRANSPORT_CAP_HW_RATE)) {
            spci_log(SPC_LOG_ERROR, "%s: reported hardware pacing without the hw-rate "
                     "capability: ignored", c->plugin->name);
            return;
        }
        atomic_store_explicit(&c->hw_paced, hw_paced, memory_order_relaxed);
    } else if (!hw_paced) {
        if (atomic_exchange_explicit(&c->hw_paced, false, memory_order_relaxed))
            spci_log(SPC_LOG_WARNING, "%s: hardware pacing lost; the software rate limiter "
                     "paces the stream from now on", c->plugin->name);
    } else {
        spci_log(SPC_LOG_ERROR, "%s: set_hw_paced(true) after open ignored", c->plugin->name);
    }
}

const struct spc_core_services spci_core_services = {
    .struct_size = sizeof(struct spc_core_services),
    .abi_minor = SPC_TRANSPORT_ABI_MINOR,
    .log = svc_log,
    .vlog = svc_vlog,
    .set_error = svc_set_error,
    .clock_ns = svc_clock_ns,
    .complete = svc_complete,
    .strerror = spc_strerror,
    .packet_parse = spc_packet_parse,
    .decoder_create = spc_decoder_create,
    .decoder_destroy = spc_decoder_destroy,
    .decoder_add_packet = spc_decoder_add_packet,
    .decoder_pop = spc_decoder_pop,
    .decoder_flush = spc_decoder_flush,
    .decoded_heap_free = spc_decoded_heap_free,
    /* ABI minor 1 */
    .frame_write = spc_frame_write,
    .frame_multicast_mac = spc_frame_multicast_mac,
    .ipv4_checksum = spc_ipv4_checksum,
    .mac_parse = spc_mac_parse,
    .inproc_queue_open = spc_inproc_queue_open,
    .inproc_queue_close = spc_inproc_queue_close,
    .inproc_queue_pushv = spc_inproc_queue_pushv,
    .inproc_queue_stop = spc_inproc_queue_stop,
    /* ABI minor 2 */
    .set_hw_paced = svc_set_hw_paced,
};

/* ------------------------------------------------------------ instances */

static void instance_free(struct spci_transport *t)
{
    if (!t)
        return;
    spci_options_free(t->options);
    pthread_mutex_destroy(&t->err_lock);
    free(t->obj);
    free(t);
}

int spci_transport_open(struct spci_transport **out, const struct spc_config *cfg,
                        spci_complete_fn on_complete, void *ctx, char *err, size_t errlen)
{
    if (!out || !cfg)
        return -EINVAL;
    const struct spci_plugin *p = spci_config_plugin(cfg);
    const struct spc_transport_descriptor *d = p->desc;
    struct spci_transport *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    pthread_mutex_init(&t->err_lock, NULL);
    t->plugin = p;
    t->ops = &p->ops;
    t->caps = d->caps;
    t->on_complete = on_complete;
    t->ctx = ctx;
    void *opts = NULL;
    int rc = spci_options_build(cfg, &t->options, &opts, err, errlen);
    if (rc < 0) {
        instance_free(t);
        return rc;
    }
    if (!(t->obj = calloc(1, d->object_size))) {
        instance_free(t);
        return -ENOMEM;
    }
    t->obj->struct_size = sizeof(struct spc_transport);
    t->obj->n_substreams = 1;
    t->obj->svc = &spci_core_services;
    t->obj->desc = d;
    t->obj->core = t;

    const struct spc_stream_config *s = spc_config_stream(cfg);
    struct spc_transport_params params = {
        .struct_size = sizeof params,
        .rate_method = (uint32_t)s->rate_method,
        .max_packet_size = s->max_packet_size,
        .flavour = s->flavour,
        .rate = s->rate,
        .burst_size = s->burst_size,
        .burst_rate_ratio = s->burst_rate_ratio,
        .max_heaps = s->max_heaps,
    };
    rc = spci_plugin_rc(p->ops.open(t->obj, opts, &params));
    if (rc != 0) {
        spci_errorf(err, errlen, "transport \"%s\": open failed: %s%s%s", p->name, spc_strerror(rc),
                     t->last_error[0] ? ": " : "", t->last_error);
        instance_free(t);
        return rc;
    }
    unsigned n = t->obj->n_substreams;
    if (n == 0 || (d->max_substreams && n > d->max_substreams)) {
        spci_errorf(err, errlen, "transport \"%s\": open set n_substreams %u outside 1..%u",
                     p->name, n, d->max_substreams ? (unsigned)d->max_substreams : UINT32_MAX);
        p->ops.close(t->obj);
        instance_free(t);
        return -SPC_EPLUGIN;
    }
    t->n_substreams = n;
    t->opened = true;
    *out = t;
    return 0;
}

void spci_transport_close(struct spci_transport *t)
{
    if (!t)
        return;
    t->ops->close(t->obj);
    instance_free(t);
}

int spci_transport_poll_until_done(struct spci_transport *t, const size_t *pending)
{
    while (*pending) {
        int n = spci_transport_poll(t);
        if (n < 0)
            return n;
        if (n == 0 && *pending) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
    }
    return 0;
}
