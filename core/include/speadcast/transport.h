/* The speadcast transport plugin ABI: the one header a transport plugin includes.
 *
 * A plugin is a shared object speadcast-<name>.so exporting exactly one symbol,
 * spc_transport_entry_v1 (the number is SPC_TRANSPORT_ABI_MAJOR), which returns the
 * plugin's descriptor. Build it with cmake's speadcast_add_plugin() (hidden visibility,
 * only the entry exported, -Wl,--no-undefined -Wl,-z,now) and define the entry with
 * SPC_TRANSPORT_DEFINE(descriptor). Built-in transports use the same descriptor.
 *
 * ABI rules
 * - Every struct passed across the boundary starts with uint32_t struct_size; fields are
 *   only ever appended (a new ABI minor). A reader uses a field only when struct_size
 *   covers it (SPC_HAS_FIELD). Changing or removing a field bumps the major, which
 *   renames the entry symbol, so an old plugin fails to load with a clear message.
 * - Arrays: option tables are walked with the stride options[0].struct_size; packets in
 *   a batch with the stride batch->packet_size (use spc_tx_batch_packet). Endpoints are
 *   passed as arrays of pointers.
 * - struct spc_transport (the base of the per-stream object) is frozen for ABI 1.
 * - The core copies ops into its own full table; optional ops left NULL (or beyond
 *   ops->struct_size) become stubs returning -SPC_ENOTSUP. open, close and send are
 *   mandatory: a plugin without them fails to load.
 *
 * Lifetime
 * - The core allocates descriptor->object_size zeroed bytes per stream; the plugin's
 *   struct embeds struct spc_transport as its FIRST member (recover it with
 *   spc_container_of). The core fills the base, then calls open(t, options, params).
 * - close(t) runs if and only if open returned 0. After close the core frees the object.
 * - The descriptor, option table and ops must stay valid while the module is loaded
 *   (static storage). Modules are never unloaded once loaded.
 *
 * Threads
 * - The core calls the ops of one object from one thread at a time (a stream's writer
 *   thread, or the opener for open/close); different objects of the same plugin may be
 *   used from different threads at once, so global plugin state needs its own lock. A
 *   stream with several writer threads opens one object per writer, only for plugins
 *   that declare SPC_TRANSPORT_CAP_PER_WRITER (see there).
 * - A plugin that starts threads joins them in close. It never writes to stderr: it logs
 *   through svc->log. Completions (svc->complete) are delivered only from inside send,
 *   poll, flush or close, on the calling thread (libfabric's manual progress): a plugin
 *   whose work finishes on another thread queues it and delivers it at the next poll.
 */
#ifndef SPEADCAST_TRANSPORT_H
#define SPEADCAST_TRANSPORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

/* Only what a plugin may use: the types of the ABI structs and of the core services
 * (decoder, frames, inproc queues, flavours, packets), log levels, error codes and the
 * stream section's enums. A plugin does not link libspeadcast: it reaches the functions
 * these headers declare only through struct spc_core_services. */
#include "speadcast/decoder.h"
#include "speadcast/error.h"
#include "speadcast/frame.h"
#include "speadcast/inproc.h"
#include "speadcast/log.h"
#include "speadcast/stream_config.h"
#include "speadcast/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ABI major: in the entry symbol's name. ABI minor: the fields appended since. */
#define SPC_TRANSPORT_ABI_MAJOR 1
#define SPC_TRANSPORT_ABI_MINOR 3
#define SPC_TRANSPORT_ENTRY_SYMBOL "spc_transport_entry_v1"

/* True when a struct whose struct_size is (p)->struct_size contains field. */
#define SPC_HAS_FIELD(p, type, field)                                                  \
    ((p)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

#define spc_container_of(ptr, type, member)                                            \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#if defined(__GNUC__)
#define SPC_TRANSPORT_EXPORT __attribute__((visibility("default")))
#define SPC_PRINTF_FMT(f, a) __attribute__((format(printf, f, a)))
#else
#define SPC_TRANSPORT_EXPORT
#define SPC_PRINTF_FMT(f, a)
#endif

struct spc_transport;
struct spc_transport_descriptor;

/* =========================================================== options */

/* Option types and the C type of the value the core stores at option->offset in the
 * plugin's typed options struct. */
enum spc_option_type {
    SPC_OPT_BOOL = 1,      /* bool */
    SPC_OPT_INT = 2,       /* int64_t; bounds in min.i / max.i */
    SPC_OPT_UINT = 3,      /* uint64_t; bounds in min.u / max.u (JSON allows up to 2^63-1) */
    SPC_OPT_DOUBLE = 4,    /* double; bounds in min.d / max.d; JSON integers accepted */
    SPC_OPT_STRING = 5,    /* const char * (NULL when absent and no default); length
                              bounds in min_count / max_count */
    SPC_OPT_ENUM = 6,      /* int: index into choices; JSON gives the choice's name */
    SPC_OPT_ENDPOINTS = 7, /* struct spc_endpoint_list; each JSON element is "host:port"
                              ("[v6addr]:port" for IPv6) or {"host": ..., "port": ...};
                              port 1..65535; count bounds in min_count / max_count */
    SPC_OPT_STRINGS = 8,   /* struct spc_string_list; count bounds in min_count / max_count */
    SPC_OPT_OBJECT = 9     /* nested JSON object whose keys are the options in fields;
                              their offsets are into the same options struct */
};

/* Option flags. */
#define SPC_OPT_REQUIRED 1u /* must be given (no default applies) */
#define SPC_OPT_MIN 2u      /* min holds a lower bound (inclusive) */
#define SPC_OPT_MAX 4u      /* max holds an upper bound (inclusive) */
#define SPC_OPT_DEFAULT 8u  /* def holds the default (bool/int/uint/double/string/enum) */
/* ABI minor 3 (an older core ignores these; the plugin's open must still refuse): */
#define SPC_OPT_IPV4 16u    /* ENDPOINTS: every host is a dotted-quad IPv4 address;
                               STRING: the value is one */
#define SPC_OPT_ONE_OF 32u  /* exactly one of the options so marked in a table must be
                               given (e.g. "endpoints" or "socket_fd"); at least two per
                               table, never with SPC_OPT_REQUIRED */

union spc_option_value {
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    const char *s; /* STRING default; ENUM default (a choice name) */
};

/* One declared option. Without SPC_OPT_DEFAULT a scalar that is absent is false/0/0.0,
 * a string NULL, an enum choice 0, a list empty. Initialise entries with
 * SPC_OPTION_INIT so struct_size is set, e.g.
 *   { SPC_OPTION_INIT, .name = "ttl", .type = SPC_OPT_UINT, .offset = offsetof(struct o, ttl),
 *     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 1, .min.u = 0,
 *     .max.u = 255, .help = "multicast time-to-live" }
 * The core checks the table when the plugin loads (unique names, known types, defaults
 * within bounds, offsets inside options_size, enum default among the choices). */
struct spc_option {
    uint32_t struct_size;
    uint32_t type;              /* enum spc_option_type */
    const char *name;           /* JSON key: [a-z0-9_]+ */
    const char *help;           /* one line; becomes the schema "description" */
    size_t offset;              /* of the value in the options struct */
    uint32_t flags;             /* SPC_OPT_* */
    union spc_option_value def;
    union spc_option_value min;
    union spc_option_value max;
    uint64_t multiple_of;       /* INT/UINT: value must be a multiple (0 = any) */
    size_t min_count;           /* STRING: min length; lists: min elements */
    size_t max_count;           /* STRING: max length; lists: max elements; 0 = unbounded */
    const char *const *choices; /* ENUM: NULL-terminated list of names */
    const struct spc_option *fields; /* OBJECT: nested options */
    size_t n_fields;
    /* ABI minor 3. STRINGS: bounds on each element's length in UTF-8 bytes (0 = none).
     * The schema states them as minLength/maxLength, which count characters: the same
     * for ASCII, looser otherwise. */
    size_t item_min_length;
    size_t item_max_length;
};
#define SPC_OPTION_INIT .struct_size = sizeof(struct spc_option)

/* Endpoint value: host as written (name or address, IPv6 without brackets) and port.
 * Resolving is the plugin's job, at open. */
struct spc_endpoint {
    uint32_t struct_size;
    uint32_t port;
    const char *host;
};
struct spc_endpoint_list {
    size_t n;
    const struct spc_endpoint *const *items; /* n pointers */
};
struct spc_string_list {
    size_t n;
    const char *const *items;
};

/* =========================================================== capabilities */

#define SPC_TRANSPORT_CAP_RELIABLE 1u /* delivery is reliable and ordered (tcp, inproc, bytes) */
#define SPC_TRANSPORT_CAP_ASYNC 2u    /* send may leave packets pending (SPC_TX_PENDING) */
#define SPC_TRANSPORT_CAP_MEMREG 4u   /* register_memory makes sends zero-copy */
#define SPC_TRANSPORT_CAP_HW_RATE 8u  /* may pace in hardware: with rate_method hw it is
                                         offered params->rate and reports with
                                         svc->set_hw_paced whether it paces */
/* The stream may open one object per writer thread (stream option writer_threads), all
 * with the same options, each driven by its own thread and sending only its writer's
 * substreams (i % writers): the objects must be independent (no shared per-object state;
 * global state under the plugin's own lock) and the receiver must accept a substream's
 * packets from any of them (udp: each object has its own sockets to the same endpoints).
 * Without it a stream drives one object from one writer thread. */
#define SPC_TRANSPORT_CAP_PER_WRITER 16u

/* =========================================================== the per-stream object */

/* Base of every per-stream transport object; frozen for ABI 1. The core fills it before
 * open; the plugin may only write n_substreams, inside open. */
struct spc_transport {
    uint32_t struct_size;                 /* sizeof(struct spc_transport) */
    uint32_t n_substreams;                /* preset to 1; open sets it (>= 1, <= max_substreams
                                             when that is not 0), e.g. one per endpoint */
    const struct spc_core_services *svc;  /* the core services; valid until close returns */
    const struct spc_transport_descriptor *desc;
    void *core;                           /* core-private */
};

/* What the stream asks of the transport; borrowed for the call to open. */
struct spc_transport_params {
    uint32_t struct_size;
    uint32_t rate_method;       /* enum spc_rate_method */
    size_t max_packet_size;     /* no packet sent will be larger */
    struct spc_flavour flavour;
    double rate;                /* bytes/s, 0 = unlimited; for hardware pacing (see
                                   svc->set_hw_paced) */
    size_t burst_size;
    double burst_rate_ratio;
    size_t max_heaps;
};

/* One packet to send: scatter/gather pieces in order. iov and the memory it references
 * are borrowed until the packet completes (status set to 0 or an error by send, or, for
 * SPC_TX_PENDING, until svc->complete is called for its token). */
struct spc_tx_packet {
    const struct iovec *iov;
    uint32_t n_iov;
    uint32_t substream;   /* < t->n_substreams (the core checks) */
    size_t size;          /* sum of iov lengths */
    void *token;          /* the core's; passed back to svc->complete */
    int status;           /* set by send: 0 sent, negative error, or SPC_TX_PENDING */
};
#define SPC_TX_PENDING 1

/* A batch of packets, in sending order. Packets for different substreams may be mixed. */
struct spc_tx_batch {
    uint32_t struct_size;
    uint32_t packet_size;            /* stride of packets[]: the core's sizeof(struct spc_tx_packet) */
    size_t n_packets;
    struct spc_tx_packet *packets;   /* use spc_tx_batch_packet() */
};

static inline struct spc_tx_packet *spc_tx_batch_packet(const struct spc_tx_batch *b, size_t i)
{
    return (struct spc_tx_packet *)(void *)((char *)b->packets + i * b->packet_size);
}

/* Copies a packet's bytes into dst (at least p->size bytes). Returns p->size. */
static inline size_t spc_tx_packet_gather(const struct spc_tx_packet *p, void *dst)
{
    size_t off = 0;
    for (uint32_t i = 0; i < p->n_iov; i++) {
        if (p->iov[i].iov_len)
            memcpy((char *)dst + off, p->iov[i].iov_base, p->iov[i].iov_len);
        off += p->iov[i].iov_len;
    }
    return off;
}

/* =========================================================== ops */

struct spc_transport_ops {
    uint32_t struct_size;

    /* Mandatory. Prepares the object: parse nothing (options are already validated and
     * typed: options points to descriptor->options_size bytes laid out as the plugin's
     * options struct, or NULL when options_size is 0; it and its strings and lists are
     * borrowed until close returns), resolve names, open sockets, set t->n_substreams.
     * On failure return a negative code (-errno, -SPC_ECONFIG for option combinations
     * the table cannot express, ...) after recording detail with svc->set_error, and
     * release everything: close is not called. */
    int (*open)(struct spc_transport *t, const void *options,
                const struct spc_transport_params *params);

    /* Mandatory. Releases everything open acquired and joins the plugin's threads. Any
     * packet still pending is completed (svc->complete) with an error first. The core
     * calls flush before close when the stream closes normally. */
    void (*close)(struct spc_transport *t);

    /* Mandatory. Sends the batch in order. Sets every packet's status: 0 once handed to
     * the network (or stored), a negative code for a packet that failed (-EMSGSIZE,
     * -ENOSPC, ...: only that packet's heap fails; later packets are still attempted),
     * or SPC_TX_PENDING (only with SPC_TRANSPORT_CAP_ASYNC) when the packet's memory is
     * still in use and svc->complete will report it. May block until the network takes
     * the packets (e.g. waiting for a writable socket). Returns 0 when every status is
     * set; a negative return means the transport can send nothing more (-SPC_ECLOSED, a
     * dead connection): no status was set, and the core fails the whole batch. */
    int (*send)(struct spc_transport *t, struct spc_tx_batch *batch);

    /* Optional. Pushes out anything buffered and waits until every pending packet has
     * been completed through svc->complete. Returns 0 or a negative code. The stub
     * (-SPC_ENOTSUP) means the transport never holds packets. */
    int (*flush)(struct spc_transport *t);

    /* Optional. Delivers the completions that are ready, without blocking. Returns the
     * number delivered (>= 0) or a negative code. */
    int (*poll)(struct spc_transport *t);

    /* Optional. A file descriptor that becomes readable when poll has work (so the core
     * can sleep in poll(2)/epoll). Owned by the plugin; valid until close. Returns the
     * fd (>= 0) or a negative code. */
    int (*get_fd)(struct spc_transport *t);

    /* Optional (SPC_TRANSPORT_CAP_MEMREG). Registers [addr, addr + len) so packets whose
     * pieces lie inside it can be sent without copying; the plugin keeps its own lookup
     * of registered ranges. *handle is the plugin's and is passed to deregister_memory.
     * The memory is borrowed until deregister_memory returns. */
    int (*register_memory)(struct spc_transport *t, void *addr, size_t len, void **handle);
    int (*deregister_memory)(struct spc_transport *t, void *handle);
};

/* =========================================================== core services */

/* Functions the core offers plugins, so plugins never link against core internals. Any
 * of them may be called from any thread of the plugin, except complete (see Threads). */
struct spc_core_services {
    uint32_t struct_size;
    uint32_t abi_minor;   /* SPC_TRANSPORT_ABI_MINOR of the core */

    /* Logs one message through the application's handler, prefixed with the transport
     * name. t may be NULL (e.g. from a plugin's global code). */
    void (*log)(struct spc_transport *t, int level, const char *fmt, ...) SPC_PRINTF_FMT(3, 4);
    void (*vlog)(struct spc_transport *t, int level, const char *fmt, va_list ap);

    /* Records the stream's last-error detail text (errno text, endpoint, substream),
     * replacing the previous one; what the application reads after an error. */
    void (*set_error)(struct spc_transport *t, const char *fmt, ...) SPC_PRINTF_FMT(2, 3);

    /* CLOCK_MONOTONIC in nanoseconds. */
    uint64_t (*clock_ns)(void);

    /* Reports that the packet whose token is given has completed: status 0 sent, or a
     * negative error. Exactly once per SPC_TX_PENDING packet, from inside send, poll,
     * flush or close. After it returns the packet's memory may be reused. */
    void (*complete)(struct spc_transport *t, void *token, int status);

    /* spc_strerror. */
    const char *(*strerror)(int code);

    /* The decoder (decoder.h), for transports that receive or inspect packets. */
    int (*packet_parse)(const void *data, size_t len, struct spc_packet_info *info);
    int (*decoder_create)(struct spc_decoder **out, const struct spc_decoder_config *cfg);
    void (*decoder_destroy)(struct spc_decoder *dec);
    int (*decoder_add_packet)(struct spc_decoder *dec, const void *data, size_t len,
                              size_t *consumed);
    int (*decoder_pop)(struct spc_decoder *dec, struct spc_decoded_heap **out);
    void (*decoder_flush)(struct spc_decoder *dec);
    void (*decoded_heap_free)(struct spc_decoded_heap *heap);

    /* Later ABI minors append here. Check with
     * SPC_HAS_FIELD(svc, struct spc_core_services, field). */

    /* --- ABI minor 1: Ethernet/IPv4/UDP frames (frame.h) and inproc queues (inproc.h).
     * Each is the public function of the same name without the svc: spc_frame_write,
     * spc_frame_multicast_mac, spc_ipv4_checksum, spc_mac_parse, spc_inproc_queue_open,
     * spc_inproc_queue_close, spc_inproc_queue_pushv, spc_inproc_queue_stop. */
    int (*frame_write)(const struct spc_frame_params *p, size_t payload_len, uint16_t id,
                       uint8_t *hdr);
    int (*frame_multicast_mac)(const uint8_t *ip, uint8_t *mac);
    uint16_t (*ipv4_checksum)(const void *data, size_t len);
    int (*mac_parse)(const char *text, uint8_t *mac);
    int (*inproc_queue_open)(struct spc_inproc_queue **out, const char *name);
    void (*inproc_queue_close)(struct spc_inproc_queue *q);
    int (*inproc_queue_pushv)(struct spc_inproc_queue *q, const struct iovec *iov,
                              unsigned n_iov);
    void (*inproc_queue_stop)(struct spc_inproc_queue *q);

    /* --- ABI minor 2: hardware pacing.
     * Reports whether the transport itself paces this stream at params->rate (a NIC's
     * rate limiter): true makes the core's software limiter stand down for the stream's
     * rate; false, the state before any call, leaves pacing to it. Only a transport with
     * SPC_TRANSPORT_CAP_HW_RATE may report true, and only where the stream asked for it
     * (params->rate_method SPC_RATE_METHOD_HW and params->rate > 0); otherwise true is
     * ignored. Call it from open (the last call before open returns counts). After open
     * it may only withdraw hardware pacing (false, e.g. a replacement queue pair refused
     * the rate), from inside send, poll or flush: the core paces the packets of its later
     * send calls in software; true after open is ignored with an error logged. Never pace
     * in software in the plugin: the core does that. */
    void (*set_hw_paced)(struct spc_transport *t, bool hw_paced);
};

/* =========================================================== descriptor and entry */

struct spc_transport_descriptor {
    uint32_t struct_size;
    uint32_t abi_major;         /* SPC_TRANSPORT_ABI_MAJOR */
    uint32_t abi_minor;         /* SPC_TRANSPORT_ABI_MINOR the plugin was built with */
    uint32_t caps;              /* SPC_TRANSPORT_CAP_* */
    const char *name;           /* [a-z0-9_-]+, equal to the <name> in speadcast-<name>.so */
    const char *version;        /* the plugin's own version, e.g. "1.2.0" */
    const char *description;    /* one line */
    const struct spc_option *options; /* may be NULL when n_options is 0 */
    size_t n_options;
    size_t options_size;        /* sizeof the typed options struct; 0 if none */
    size_t object_size;         /* sizeof the per-stream object, >= sizeof(struct spc_transport) */
    uint32_t max_substreams;    /* upper bound on n_substreams; 0 = no fixed bound */
    const struct spc_transport_ops *ops;
};

/* Fills the fields every descriptor must carry; use first in the initialiser:
 *   static const struct spc_transport_descriptor my_desc = {
 *       SPC_TRANSPORT_DESCRIPTOR_INIT, .name = "mine", .version = "1.0", ... };
 *   SPC_TRANSPORT_DEFINE(my_desc) */
#define SPC_TRANSPORT_DESCRIPTOR_INIT                                                  \
    .struct_size = sizeof(struct spc_transport_descriptor),                            \
    .abi_major = SPC_TRANSPORT_ABI_MAJOR, .abi_minor = SPC_TRANSPORT_ABI_MINOR
#define SPC_TRANSPORT_OPS_INIT .struct_size = sizeof(struct spc_transport_ops)

/* The entry point: returns the plugin's descriptor (static storage). Called once, under
 * the loader's lock; it must not call back into speadcast. */
typedef const struct spc_transport_descriptor *(*spc_transport_entry_fn)(void);

#define SPC_TRANSPORT_DEFINE(desc)                                                     \
    SPC_TRANSPORT_EXPORT const struct spc_transport_descriptor *spc_transport_entry_v1(void); \
    SPC_TRANSPORT_EXPORT const struct spc_transport_descriptor *spc_transport_entry_v1(void) \
    {                                                                                  \
        return &(desc);                                                                \
    }

#ifdef __cplusplus
}
#endif

#endif
