/* The send stream's state, core-internal: the structures (and inline accessors) the
 * stream's files share, and nothing else; each file declares its own functions in its own
 * header (stream.c: open, close, queries; stream_send.c: send paths and heap lists;
 * stream_writer.c/.h: the writer threads; stream_cq.c/.h: the completion queue;
 * stream_memory.c/.h: memory registration), so the files form no include cycle.
 *
 * Queue. max_heaps heap slots and as many group records, both rings indexed by
 * monotonically increasing counters (index = counter % cap). A send takes the lock,
 * checks room, fills the next free slots and one group record, and publishes them by
 * advancing q_alloc / g_alloc. The writer reads published slots without the lock: a slot's
 * sender-written fields do not change until the writer frees it (q_free, under the lock).
 *
 * Writers. writer_threads threads (1 unless the transport can be opened once per writer:
 * SPC_TRANSPORT_CAP_PER_WRITER); substream i belongs to writer i % n_writers, so each
 * substream's packets keep their order. A sender appends each heap to its writer's heap
 * ring and, per writer with heaps in the group, one group share to its share ring. A
 * writer takes packets from its oldest unfinished share (SERIAL: heap after heap;
 * ROUND_ROBIN: one packet per unfinished heap in turn), so its groups go out strictly in
 * order, and packs them, spanning heaps and groups, into a batch: one transport send.
 * A batch owns its packet records (iovecs, owning heap) and a scratch arena in which the
 * packets' headers are bump-allocated; all stay in use until the transport has completed
 * every packet of the batch. Batches are preallocated (one, or two for an asynchronous
 * transport so one is packed while the other is in flight), so nothing is allocated per
 * heap or packet. A heap finishes when all its packets are produced and completed; a
 * group when all its heaps have. Finished groups are retired from the front, in order,
 * by whichever writer holds retire_lock: their slots are freed first, then their
 * completions are delivered outside the lock, so completions keep submission order.
 *
 * Rate. spci_ratelimit gates every packet of a rate-limited heap; the writer sleeps at
 * burst boundaries (absolute-time sleep, then a short spin of at most the measured
 * oversleep). With several writers each gathers a burst's bytes, then merges them into
 * the stream's shared limiter and waits there, so the rate holds for the stream as a
 * whole. Work that arrives when every writer is idle resumes the limiter (idle time is
 * no deficit).
 *
 * Hand-offs (#17). A sender wakes a writer only when it is idle; the writer packs all
 * that is queued before it sleeps; blocked senders are woken once half the queue is
 * free; the completion fd is signalled once per run of completions and not while a
 * signal is unread; flush is signalled only when someone waits.
 *
 * Locks. lock guards the queue counters, the rings' fill side and registrations; each
 * writer's tx_lock serialises the calls into its transport object; rl_lock guards the
 * shared limiter; retire_lock the retiring. Order: lock, then tx_lock (deregistration);
 * retire_lock, then lock. No transport call is made under lock otherwise, and nothing
 * takes lock under tx_lock or rl_lock.
 */
#ifndef SPCI_STREAM_STATE_H
#define SPCI_STREAM_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "clock.h"
#include "ratelimit.h"
#include "speadcast/speadcast.h"
#include "speadcast/stream.h"
#include "transport_internal.h"

/* Batch limits: a batch ends at BATCH_MAX_PACKETS packets or once it holds
 * BATCH_MAX_BYTES, whichever comes first (or earlier, where the rate limiter must wait or
 * the work runs out). SPEC §3 speaks of 64 packets per sendmmsg, spead2's figure; but with
 * UDP GSO one message carries up to 64 KiB (44 packets of 1472 bytes), and a system call
 * is only amortised over many full messages: the bare sendmmsg ceiling sends 16 per call,
 * and 64-packet batches (one or two GSO messages per call) reached about 75 % of it. So a
 * batch holds 16 full GSO messages' worth of bytes, and for small packets up to 1024
 * packets. Transports split a batch as they need (udp: 64 messages per sendmmsg). */
#define BATCH_MAX_PACKETS 1024u
#define BATCH_MAX_BYTES (16u * 65536u)
/* Header scratch per packet the arena provides beyond one worst-case packet. A packet
 * uses iov[0].iov_len bytes of it, rounded up to 8: its header and item pointers (40
 * bytes after a heap's first packet; 40 + 8 per item with repeat_pointers), whole
 * payloads only in the rare copy case. A batch ends before a packet could find less than
 * spc_packet_scratch_size(mps) left, so a full batch fits packets of up to 128 bytes of
 * header (repeat_pointers heaps of up to 11 items). */
#define BATCH_ARENA_PER_PACKET 128u

struct waiter {
    bool done;
    int status;
    uint64_t bytes;
};

struct slot {
    /* Written by the sender under the lock while the slot is free. */
    const struct spc_heap *heap;
    uint64_t cnt;
    uint32_t substream;
    size_t group; /* index in groups[] */
    bool stream_rate; /* at the stream's rate (paced as the writer's w_step says) */
    struct spci_rate_step step; /* otherwise */
    /* Owned by its writer (substream % n_writers) while the slot is in use (reset by the
     * sender). */
    struct spc_packetizer pz;
    /* The heap's payload layout for the stream's packet size, or NULL. This send writes
     * headers into it (pz.in_place) from the packet that claimed it until the heap
     * finishes, when it lets go. */
    struct spci_layout *layout;
    bool started;
    bool produced;     /* every packet handed out (or the heap failed before that) */
    uint32_t inflight; /* packets handed to the transport and not yet completed */
    int status;
    uint64_t bytes;
};

struct group {
    /* Written by the sender before it publishes the group. */
    uint64_t first; /* slot counter of its first heap */
    size_t n;
    enum spc_group_mode mode;
    spc_send_callback cb;
    void *user;
    struct waiter *waiter;
    /* Heaps not yet finished: each writer decrements it for its own heaps (release, after
     * writing their status and bytes); the retirer reads it (acquire). */
    _Atomic size_t unfinished;
};

/* A writer's share of a group: its heaps of the group, in group order, at wq[first ..
 * first + n) of its heap ring. Written by the sender; cursor and unproduced writer-owned. */
struct wgroup {
    uint64_t first;
    size_t n;
    enum spc_group_mode mode;
    size_t cursor;     /* next heap (index within the share) to take a packet from */
    size_t unproduced; /* heaps of the share not yet produced */
};

struct done_rec {
    spc_send_callback cb;
    void *user;
    bool sync; /* a synchronous send: reported to its waiter only */
    int status;
    uint64_t bytes;
};

struct batch;
struct writer;

/* One packet of a batch. */
struct tx {
    struct spc_packet pkt;
    struct slot *slot;
    struct batch *batch;
    bool pending; /* handed to the transport, completion not yet seen */
};

/* Free (may be packed) exactly when pending == 0. */
struct batch {
    struct tx *tx;              /* BATCH_MAX_PACKETS records */
    struct spc_tx_packet *pkts; /* what the transport is handed, parallel to tx */
    uint8_t *arena;             /* arena_size bytes of header scratch */
    size_t pending;             /* packets handed to the transport and not yet completed */
};

/* A checked heap reference: what a send or a list entry puts in a slot. */
struct prep {
    const struct spc_heap *heap;
    uint64_t cnt;
    uint32_t substream;
    bool stream_rate;
    struct spci_rate_step step;
    size_t n_items;
    uint64_t payload;
    bool repeat;
};

/* A registration (spc_stream_register_memory): one transport handle per writer's
 * transport object (unused where the transport has no registration). */
struct spc_stream_memory {
    struct spc_stream_memory *next;
    uintptr_t start, end;
    void *handle[];
};

struct spc_heap_list {
    const struct spc_stream *stream;
    size_t n;
    struct prep e[];
};

/* A writer thread: the substreams i with i % n_writers == index, its own transport
 * object (several only where the transport declares SPC_TRANSPORT_CAP_PER_WRITER), its
 * own batches and its own queue of heap references, filled by the senders. */
struct writer {
    struct spc_stream *s;
    unsigned index;
    pthread_t thread;
    bool running; /* thread started */
    struct spci_transport *tp;
    pthread_mutex_t tx_lock; /* held around calls into tp */

    /* Its queue: heap ring wq and group-share ring wg (cap entries each). Filled by the
     * senders under the stream's lock; wg_alloc is stored under it (release) and read by
     * the writer (acquire), so published entries are complete when seen. */
    struct slot **wq;
    struct wgroup *wg;
    uint64_t wq_alloc;            /* under lock */
    _Atomic uint64_t wg_alloc;
    pthread_cond_t work_cv;       /* the writer waits for work */
    bool idle, active;            /* under lock: waiting on work_cv; counted in n_active */

    /* Writer-private. */
    uint64_t w_group; /* oldest share with packets left to produce */
    uint64_t w_seen;  /* wg_alloc as last read */
    /* The limiter: the stream's own with one writer; with several, this one only gathers
     * the writer's bytes until a burst is full, then merges them into the stream's
     * shared limiter (rl_lock) and gates there. */
    struct spci_ratelimit rl;
    bool hw;                      /* the transport paces the stream's rate (svc->set_hw_paced) */
    struct spci_rate_step w_step; /* step of stream-rate heaps: zero when hw, else stream_step */
    uint64_t late_est;            /* estimated oversleep of clock_nanosleep, ns */
    struct batch batches[2];
    unsigned n_batches; /* 1, or 2 for an asynchronous transport */
    unsigned b_next;    /* the batch packed next */
    struct tx *tx;      /* every batch's records: n_batches x BATCH_MAX_PACKETS */
    struct spc_tx_packet *pkts;
    uint8_t *arena;
    size_t n_pending;   /* packets of all batches not yet completed */
    bool no_flush;      /* the transport's flush is the -SPC_ENOTSUP stub */
};

struct spc_stream {
    struct spc_stream_config cfg;
    size_t mps;
    uint64_t cnt_mask;
    struct spci_transport *tp; /* writers[0].tp: names, errors, the bytes transport */
    unsigned n_sub;
    bool async;
    struct spci_rate_step stream_step; /* the stream's rate in software; zero when unlimited */
    struct spc_clock clock;            /* now_ns NULL: CLOCK_MONOTONIC */
    uint64_t spin_max;
    size_t cap;
    struct slot *slots;
    struct group *groups;
    size_t arena_size;   /* per batch */
    size_t scratch_size; /* spc_packet_scratch_size(mps): one packet's worst case */
    unsigned n_writers;
    struct writer *writers;

    pthread_mutex_t lock;
    pthread_cond_t room_cv; /* blocked senders wait for room */
    pthread_cond_t done_cv; /* sync senders, flush and close wait for completions */
    /* Under lock. */
    uint64_t q_alloc, q_free;                /* slot counters */
    uint64_t g_done;                         /* group counter */
    /* Group counters read or written without the lock (hand-offs without a lock round
     * trip): g_alloc is stored under lock by the sender (release), read by the retirer
     * (acquire); g_delivered is advanced by the retirer alone. Waiters for g_delivered
     * count themselves in done_waiters before they test it, and the retirer reads
     * done_waiters after advancing it (both sequentially consistent), so either the
     * waiter sees the new value or the retirer sees the waiter and signals. */
    _Atomic uint64_t g_alloc, g_delivered;
    _Atomic unsigned done_waiters;
    uint64_t cnt_next, cnt_step;
    _Atomic int broken;                      /* sticky transport error, 0 if none */
    bool stopping;
    unsigned n_active; /* writers not idle */
    unsigned room_waiters, callers;
    struct spc_stream_memory *mem; /* registrations */
    size_t room_need; /* free slots at which blocked senders are woken */

    /* The shared rate limiter of a stream with several writers. */
    pthread_mutex_t rl_lock;
    struct spci_ratelimit rl;

    /* Retiring finished groups, in order, by whichever writer gets retire_lock (the others
     * set retire_again, which the holder checks before it lets go). */
    pthread_mutex_t retire_lock;
    _Atomic bool retire_again;
    uint64_t w_done; /* = g_done; under retire_lock */
    struct done_rec *done_buf;

    bool cq_on;
    pthread_mutex_t cq_lock;
    struct spc_stream_completion *cq;
    size_t cq_cap, cq_head, cq_len;
    bool cq_signalled; /* the eventfd holds a signal the consumer has not read yet */
    int efd;

    _Atomic uint64_t st_heaps, st_packets, st_bytes, st_batches, st_sleeps, st_late, st_late_max,
        st_spin, st_wakeups, st_cq_signals, st_in_place;
};

/* The writer that owns a substream's heaps. */
static inline struct writer *spci_stream_writer_of(struct spc_stream *s, uint32_t substream)
{
    return &s->writers[substream % s->n_writers];
}

static inline void spci_stat_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

/* The stream whose writer thread this is (NULL on other threads). */
extern _Thread_local const struct spc_stream *spci_stream_current_writer;

/* Whether the caller is one of the stream's writer threads (a completion callback). */
static inline bool spci_stream_is_writer(const struct spc_stream *s)
{
    return spci_stream_current_writer == s;
}

/* The stream's clock: the application's (options.clock) or CLOCK_MONOTONIC. */
static inline uint64_t spci_stream_now_ns(const struct spc_stream *s)
{
    if (s->clock.now_ns)
        return s->clock.now_ns(s->clock.user);
    return spci_monotonic_ns();
}

#endif
