/* Control block of the "streamfake" test transport (tests/fake/streamfake.c).
 *
 * A test allocates one struct sf_control, initialises it with sf_control_init and passes
 * its address as the transport's "control" option (an unsigned integer); the plugin and
 * the test share it in-process. Fields marked [test] are set by the test (under lock once
 * the stream runs); [fake] fields are written by the transport under lock. */
#ifndef SPC_STREAMFAKE_H
#define SPC_STREAMFAKE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One packet as the transport saw it. */
struct sf_packet {
    uint64_t t_ns;      /* clock at send (control clock, else the core's clock) */
    uint64_t cnt;       /* heap cnt from the header */
    uint64_t offset;    /* heap offset */
    uint64_t heap_size;
    uint32_t substream;
    uint32_t size;
    uint32_t batch;     /* index of the send call */
    uint32_t object;    /* which transport object sent it (0, 1, ... in the order opened) */
    int status;         /* status reported for it (after completion, for async) */
};

struct sf_control {
    pthread_mutex_t lock;
    pthread_cond_t cv; /* broadcast on every change of sends_entered / hold */

    /* [test] behaviour */
    bool hold;              /* send blocks (after recording its entry) while set */
    bool async;             /* leave packets pending: poll completes up to 3, flush all */
    bool async_reverse;     /* complete pending packets newest first */
    int send_rc;            /* nonzero: send returns it, setting no status */
    bool fail_on;           /* packets of heap cnt fail_cnt get status fail_status */
    uint64_t fail_cnt;
    int fail_status;
    uint64_t (*clock)(void *user); /* timestamps; NULL = the core's clock */
    void (*on_packet)(void *user, size_t size); /* called per packet sent, e.g. to
                                                   advance a fake clock (link time) */
    void *user;
    int reg_rc;             /* nonzero: register_memory fails with it */
    int dereg_rc;           /* nonzero: deregister_memory fails with it */
    bool withdraw_hw;       /* the next send withdraws hardware pacing (set_hw_paced false) */

    /* [fake] recording */
    struct sf_packet *rec;  /* [test] array of rec_cap entries (may be NULL) */
    size_t rec_cap;
    size_t n_rec;           /* packets seen (may exceed rec_cap; the rest not kept) */
    uint8_t *data;          /* [test] buffer of data_cap bytes for the stream's bytes */
    size_t data_cap;
    size_t n_data;
    size_t sends_entered;   /* send calls begun */
    size_t n_batches;
    size_t max_batch;
    size_t pending;         /* async packets not yet completed */
    size_t max_pending;
    size_t corrupt;         /* async: packets whose bytes changed before completion */
    size_t opened, closed;
    uint32_t n_substreams;  /* [fake] from the "substreams" option */
    uint32_t rate_method;   /* the open params */
    double rate;
    bool hw_paced;          /* open reported hardware pacing ("hw_pace" option) */
    size_t reg_calls, dereg_calls;
    size_t n_regions;       /* registered now */
    void *last_reg_addr;    /* of the last successful register_memory */
    size_t last_reg_len;
    size_t memreg_in_send;  /* register/deregister calls made while a send ran (must stay 0) */
};

static inline void sf_control_init(struct sf_control *c)
{
    *c = (struct sf_control){0};
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cv, NULL);
}

static inline void sf_control_destroy(struct sf_control *c)
{
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cv);
}

#endif
