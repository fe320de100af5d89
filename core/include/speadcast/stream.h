/* Send streams (SPEC §3): a queue of heaps, a writer thread (or writer_threads of them,
 * each with its share of the substreams: see config.h) that packetizes them, paces
 * them with the software rate limiter (unless the transport paces in hardware) and hands
 * the transport batches of packets (up to 1024 packets or 1 MiB each, spanning heaps and
 * groups, fewer where the rate limiter must wait), and completions through callbacks, a
 * pollable completion queue or synchronous calls.
 *
 * Lifetime and ownership
 * - A heap passed to a send is borrowed from the call until its completion: neither it
 *   nor the memory its items reference may be modified or freed before then (the
 *   packets are built from it while it is queued). The spc_heap_ref array itself is
 *   borrowed for the call only.
 * - A group (one send call, of one heap or of a list) completes exactly once, with
 *   (status, bytes): status 0 or the first error among its heaps, bytes the sum of the
 *   sizes of its packets that were sent. Accepted groups complete in the order they were
 *   accepted. Their queue slots are freed before the completion runs, so a completion
 *   may queue more.
 * - A send call that returns an error queued nothing, never completes, and leaves the
 *   heap cnt sequence unchanged: the return value is the report.
 *
 * Threads
 * - Every function here is thread-safe unless stated otherwise; sends may come from
 *   many threads at once. Heaps accepted by concurrent calls are queued in the order the
 *   calls took the queue's lock.
 * - Completion callbacks run on a writer thread of the stream (with several writers,
 *   whichever retires the group), one at a time, in order.
 *   They may call the asynchronous sends (with on_full "block" a full queue then fails
 *   with -SPC_EQUEUE_FULL instead of waiting), spc_stream_drain and the queries; the
 *   synchronous sends and spc_stream_flush return -EDEADLK there, and
 *   spc_stream_close must not be called there (it logs an error and does nothing).
 * - spc_stream_close must not run concurrently with any other call on the stream, nor
 *   be followed by one.
 */
#ifndef SPEADCAST_STREAM_H
#define SPEADCAST_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "speadcast/config.h"
#include "speadcast/error.h"
#include "speadcast/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

struct spc_stream;

/* ------------------------------------------------------------ options */

/* A clock for the writer thread, replacing CLOCK_MONOTONIC and its absolute-time sleep:
 * for simulation and tests. now_ns returns nanoseconds (monotonic); sleep_until_ns
 * returns once now_ns() >= t. Both are called from the writer thread only. */
struct spc_clock {
    uint64_t (*now_ns)(void *user);
    void (*sleep_until_ns)(void *user, uint64_t t);
    void *user;
};

/* What a stream takes beyond its configuration (C API only). Sized: struct_size =
 * sizeof(struct spc_stream_options), as SPC_STREAM_OPTIONS_DEFAULT sets it; fields beyond
 * a caller's struct_size take their defaults. */
struct spc_stream_options {
    uint32_t struct_size;
    /* CPU the writer thread is pinned to; -1 = no affinity. */
    int cpu;
    /* Keep a completion queue (spc_stream_completion_fd, spc_stream_drain) for the
     * sends made without a callback. Without it such completions are discarded. */
    bool completion_queue;
    /* Longest busy-wait that ends a rate-limiter sleep. The writer sleeps (absolute
     * time) until the target less a margin, then spins on the clock up to the target.
     * The margin is its measured oversleep, capped at this value and at 1/8 of the wait
     * (so spinning never takes more than about an eighth of the writer's time). 0 = never
     * spin: sleep to the target. */
    uint64_t spin_max_ns;
    /* NULL = CLOCK_MONOTONIC. Borrowed until the stream is closed. */
    const struct spc_clock *clock;
};

#define SPC_STREAM_DEFAULT_SPIN_MAX_NS 100000u
#define SPC_STREAM_OPTIONS_DEFAULT                                                     \
    ((struct spc_stream_options){.struct_size = sizeof(struct spc_stream_options),       \
                                 .cpu = -1,                                              \
                                 .completion_queue = false,                              \
                                 .spin_max_ns = SPC_STREAM_DEFAULT_SPIN_MAX_NS,          \
                                 .clock = NULL})

/* ------------------------------------------------------------ open and close */

/* Opens a stream on cfg's transport with cfg's stream section. opts NULL = defaults.
 * cfg and opts are borrowed for the call (opts->clock until close); the stream does not
 * depend on cfg afterwards. Starts the writer thread. On failure err gets the reason.
 * Pacing: with rate_method "hw" and a rate, the transport paces the stream's rate where
 * it reports at open that it can; otherwise (and from the moment a transport withdraws
 * it) the software limiter does, with a warning logged. Heaps sent with their own rate
 * are always paced in software.
 * Errors: -SPC_ECONFIG, -SPC_EPLUGIN, the transport's open error, -EINVAL (bad cpu or
 * argument), -ENOMEM, or a thread creation error. */
int spc_stream_open(struct spc_stream **out, const struct spc_config *cfg,
                    const struct spc_stream_options *opts, char *err, size_t errlen);

/* As spc_stream_open, from a JSON document (see config.h), borrowed for the call. */
int spc_stream_open_json(struct spc_stream **out, const char *json,
                         const struct spc_stream_options *opts, char *err, size_t errlen);

/* Stops accepting heaps (later and blocked sends fail with -SPC_ESTOPPED), waits until
 * every accepted group has completed, joins the writer thread, flushes the transport,
 * deregisters the memory still registered, closes the transport and frees the stream.
 * NULL is a no-op. */
void spc_stream_close(struct spc_stream *s);

/* ------------------------------------------------------------ queries and settings */

/* The stream section the stream runs with (max_packet_size as configured). Borrowed
 * until close. */
const struct spc_stream_config *spc_stream_get_config(const struct spc_stream *s);

/* Number of substreams (>= 1): valid substream indices are 0 .. n-1. */
unsigned spc_stream_n_substreams(const struct spc_stream *s);

/* Sets the automatic heap cnt sequence: the next heap sent without an explicit cnt gets
 * next, the one after next + step, ..., each masked to heap_address_bits (wrapping
 * silently). Starts as (1, 1). Errors: -EINVAL when step is 0 modulo 2^heap_address_bits. */
int spc_stream_set_cnt_sequence(struct spc_stream *s, uint64_t next, uint64_t step);

/* Copies the detail of the last error the transport or the stream recorded into err (see
 * "Error detail" in speadcast.h); "" if none. Returns the detail's length. */
size_t spc_stream_last_error(struct spc_stream *s, char *err, size_t errlen);

/* Counters since open, for tools and benchmarks. Sized: the caller sets struct_size
 * (SPC_STREAM_STATS_INIT) and gets the counters that fit in it. */
struct spc_stream_stats {
    uint32_t struct_size;
    uint64_t heaps;        /* heaps completed (sent or failed) */
    uint64_t packets;      /* packets handed to the transport */
    uint64_t bytes;        /* their bytes */
    uint64_t batches;      /* transport send calls */
    uint64_t sleeps;       /* rate-limiter waits */
    uint64_t sleep_late_ns;     /* sum over waits of (time the wait ended - target) */
    uint64_t sleep_late_max_ns; /* largest such lateness */
    uint64_t spin_ns;      /* time spent busy-waiting at the end of waits */
    uint64_t writer_wakeups; /* times the idle writer was woken for new work */
    uint64_t cq_signals;   /* eventfd signals of the completion queue (at most one per run
                              of completions, none while one is unread) */
    uint64_t packets_in_place; /* packets sent as one piece from a heap's payload layout
                                  (spc_heap_reserve_item) */
};
#define SPC_STREAM_STATS_INIT ((struct spc_stream_stats){.struct_size = sizeof(struct spc_stream_stats)})
void spc_stream_get_stats(const struct spc_stream *s, struct spc_stream_stats *out);

/* ------------------------------------------------------------ sending */

/* Packet order of a group of heaps. */
enum spc_group_mode {
    SPC_GROUP_SERIAL = 0,      /* heap after heap */
    SPC_GROUP_ROUND_ROBIN = 1  /* one packet from each heap in turn, skipping finished ones */
};

/* cnt value asking for the next cnt of the automatic sequence. */
#define SPC_CNT_AUTO UINT64_MAX

/* One heap to send. cnt: SPC_CNT_AUTO or an explicit cnt below 2^heap_address_bits (an
 * explicit cnt does not advance the sequence). rate in bytes/s: negative = the stream's
 * rate, 0 = unlimited, > 0 = this rate (it applies to this heap's packets; the burst
 * and catch-up rules are the stream's). The heap's flavour must equal the stream's. */
struct spc_heap_ref {
    const struct spc_heap *heap;
    uint64_t cnt;
    uint32_t substream;
    double rate;
};

#define SPC_HEAP_REF(h)                                                                \
    ((struct spc_heap_ref){.heap = (h), .cnt = SPC_CNT_AUTO, .substream = 0, .rate = -1.0})

/* Completion callback: status 0 or a negative code, bytes sent. Runs on the writer
 * thread (see Threads). user is the pointer given to the send. */
typedef void (*spc_send_callback)(void *user, int status, uint64_t bytes);

/* Queues one heap and returns at once; cb (or, when cb is NULL, the completion queue)
 * reports the outcome. Errors (nothing queued): -EINVAL (NULL heap, NaN or infinite
 * rate), -SPC_EFLAVOUR (heap flavour differs from the stream's), -SPC_ESUBSTREAM,
 * -SPC_EHEAP_CNT (explicit cnt too large), the errors of spc_heap_validate for the
 * stream's max_packet_size, -SPC_EQUEUE_FULL (on_full "fail", or a group larger than
 * max_heaps), -SPC_ESTOPPED (closing), or the error that broke the transport (a
 * transport that can send nothing more, e.g. -SPC_ECLOSED, fails the heaps queued at
 * that time through their completions and every later send). With on_full "block" a
 * full queue makes the call wait for room. */
int spc_stream_send(struct spc_stream *s, const struct spc_heap_ref *ref, spc_send_callback cb,
                    void *user);

/* spc_stream_send of SPC_HEAP_REF(heap). */
int spc_stream_send_heap(struct spc_stream *s, const struct spc_heap *heap, spc_send_callback cb,
                         void *user);

/* Queues n heaps as one group, all or nothing: when any heap is invalid or the queue
 * lacks room for all n (after waiting, with "block"), nothing is queued and the cnt
 * sequence does not move. Automatic cnts are assigned in list order. The group
 * completes once. Errors: those of spc_stream_send, -EINVAL for n == 0 or a bad mode. */
int spc_stream_send_heaps(struct spc_stream *s, const struct spc_heap_ref *refs, size_t n,
                          enum spc_group_mode mode, spc_send_callback cb, void *user);

/* Queues n heaps as n groups of one, all or nothing (as spc_stream_send_heaps: any invalid
 * heap or too little room for all n queues none): heap i completes on its own, with
 * cb(users[i], ...) (or into the completion queue with users[i] when cb is NULL). One
 * call, one lock and at most one writer wake-up for the lot: an event loop refilling its
 * window after a drain uses it instead of n spc_stream_send calls. users is borrowed for
 * the call. Errors: those of spc_stream_send_heaps; -EINVAL for NULL users or n == 0. */
int spc_stream_send_each(struct spc_stream *s, const struct spc_heap_ref *refs, size_t n,
                         spc_send_callback cb, void *const *users);

/* Synchronous versions: queue (as above), then wait for the completion. Return the
 * send's error, else the completion status; *bytes (may be NULL) receives the bytes
 * sent. -EDEADLK from a completion callback. */
int spc_stream_send_sync(struct spc_stream *s, const struct spc_heap_ref *ref, uint64_t *bytes);
int spc_stream_send_heaps_sync(struct spc_stream *s, const struct spc_heap_ref *refs, size_t n,
                               enum spc_group_mode mode, uint64_t *bytes);

/* Waits until every group accepted before the call has completed and its completion
 * (callback or queue entry) has been delivered. Returns 0, or -EDEADLK from a callback. */
int spc_stream_flush(struct spc_stream *s);

/* ------------------------------------------------------------ reusable heap lists */

/* A list of heap references checked and converted once for one stream (validation,
 * flavour, substream and cnt checks, the per-heap rate turned into the limiter's step),
 * then sent many times, whole or as any slice, with no further checks than an O(1)
 * test per heap that it has not changed shape. The heaps are borrowed until the list is
 * freed; while it exists they may not gain or lose items (the values their items
 * reference may change between sends). A list is immutable: any number of threads may
 * send it at once. */
struct spc_heap_list;

/* Builds a list from n >= 1 references (borrowed for the call) for stream s. Errors:
 * those of spc_stream_send for each heap, -EINVAL for n == 0, -ENOMEM. */
int spc_heap_list_create(struct spc_heap_list **out, struct spc_stream *s,
                         const struct spc_heap_ref *refs, size_t n);
/* Frees the list (it may outlive its stream). NULL is a no-op. */
void spc_heap_list_destroy(struct spc_heap_list *list);
size_t spc_heap_list_size(const struct spc_heap_list *list);

/* Sends entries [first, first + count) of the list as one group, all or nothing, as
 * spc_stream_send_heaps. Errors: those of spc_stream_send_heaps, -EINVAL for a list
 * made for another stream, a slice outside the list or count 0, or a heap that gained
 * or lost items since the list was made. */
int spc_stream_send_list(struct spc_stream *s, const struct spc_heap_list *list, size_t first,
                         size_t count, enum spc_group_mode mode, spc_send_callback cb,
                         void *user);
int spc_stream_send_list_sync(struct spc_stream *s, const struct spc_heap_list *list,
                              size_t first, size_t count, enum spc_group_mode mode,
                              uint64_t *bytes);

/* ------------------------------------------------------------ completion queue */

/* One completion taken from the queue: the user pointer given to the send. */
struct spc_stream_completion {
    void *user;
    int status;
    uint64_t bytes;
};

/* An eventfd that is readable exactly while the completion queue is not empty, for
 * poll/epoll/an event loop (level-triggered; with edge triggering, drain until a call
 * returns fewer than max). It is signalled once per run of completions the writer
 * delivers, and not again until a drain has emptied the queue, so a consumer that drains
 * everything at each wake-up pays one wake-up per run, not per heap. Owned by the
 * stream; valid until close. Returns the fd, or -SPC_ENOTSUP when the stream was opened
 * without completion_queue. */
int spc_stream_completion_fd(struct spc_stream *s);

/* Moves up to max queued completions, oldest first, into out. Returns how many (0 when
 * empty), -EINVAL, or -SPC_ENOTSUP without completion_queue. Never blocks. */
int spc_stream_drain(struct spc_stream *s, struct spc_stream_completion *out, size_t max);

/* ------------------------------------------------------------ registered memory */

/* A range of memory registered with a stream's transport (opaque, owned by the stream). */
struct spc_stream_memory;

/* Registers [addr, addr + len) with the stream's transport, so that packets whose payload
 * lies inside it can be sent without copying (ibverbs: the NIC reads it in place).
 * Registration is never needed to send a heap; it spares a copy where the transport can
 * use it. A transport that sends from any memory as it is (one without
 * SPC_TRANSPORT_CAP_MEMREG: udp, tcp, bytes, inproc, pcap) is not asked: the call succeeds
 * as a no-op, so one program runs unchanged on every transport (as libfabric's fi_mr_reg
 * on providers that need no registration).
 * Ownership: the memory is borrowed from the call until spc_stream_deregister_memory of
 * *out returns, or until close: it must stay mapped that long (its contents may change
 * between sends, as for any item memory). *out belongs to the stream: deregistering or
 * closing frees it.
 * Threads: thread-safe, also from completion callbacks and while heaps are in flight; it
 * waits for a transport call in progress (e.g. a send) to return, as transport calls are
 * serialised.
 * Errors: -EINVAL (NULL argument, len 0, or a range that wraps around), -ENOMEM, or the
 * transport's error, with detail in spc_stream_last_error (ibverbs: ibv_reg_mr's errno,
 * e.g. -ENOMEM at the locked-memory limit). On an error nothing is registered. */
int spc_stream_register_memory(struct spc_stream *s, void *addr, size_t len,
                               struct spc_stream_memory **out);

/* Deregisters a range registered on s and frees mem. It never waits: while any heap that
 * a send accepted and that has not yet completed has an item whose memory overlaps the
 * range, it is refused with -EBUSY and changes nothing (the detail in
 * spc_stream_last_error names the heap cnt); deregister after those completions, e.g.
 * after spc_stream_flush. A completion callback may deregister the memory of its own
 * heaps (their slots are freed before it runs). Heaps only in a heap list do not count.
 * Threads: as spc_stream_register_memory.
 * Errors: -EINVAL (NULL s, or mem not a registration of s still in place), -EBUSY, or
 * the transport's error (the registration then stays in place and mem stays valid). */
int spc_stream_deregister_memory(struct spc_stream *s, struct spc_stream_memory *mem);

#ifdef __cplusplus
}
#endif

#endif
