/* The ibverbs plugin's internal header: its object, constants and the functions its
 * files share (see ibverbs.c for the design). Not installed; seen by the plugin's files
 * and the simulated-device test (tests/unit/test_ibverbs_sim.c), which links the same
 * objects. */
#ifndef IBVP_H
#define IBVP_H

#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include <infiniband/verbs.h>

#include "ibvp_verbs.h"
#include "speadcast/transport.h"

#define HDR SPC_FRAME_HEADER_LEN
#define IBVP_MAX_SGE 4u           /* scatter/gather entries per request (spead2: 4); a packet
                                     needing more is copied whole */
#define IBVP_WQEBB 64u            /* mlx5 send-queue block */
#define IBVP_WQE_BASE 48u         /* mlx5 raw packet request: control + Ethernet segment */
#define IBVP_WQE_PER_SGE 16u      /* one data segment */
#define IBVP_IP_UDP_LEN (SPC_FRAME_IPV4_LEN + SPC_FRAME_UDP_LEN) /* the MTU counts these too */
/* Memory is registered with relaxed ordering: an optional access flag (devices that
 * cannot do it ignore it), which lets PCIe reorder the NIC's reads. */
#define IBVP_ACCESS_RO IBV_ACCESS_RELAXED_ORDERING
#define IBVP_MAX_CHAIN 64u        /* work requests per post */
#define IBVP_WC_BATCH 16          /* completions per poll_cq */
#define IBVP_SLOT_ALIGN 64u
#define IBVP_HUGE_PAGE (2u << 20)
#define IBVP_ACK_EVERY 32u        /* completion events acknowledged in groups */
#define IBVP_NO_SUB UINT32_MAX

struct ibvp_options {
    struct spc_endpoint_list endpoints;
    const char *interface_address;
    uint64_t buffer_size;
    uint64_t ttl;
    int64_t comp_vector;
    uint64_t max_poll;
};

/* A range registered by register_memory; the handle given back is this record. */
struct ibvp_region {
    uintptr_t start, end;
    struct ibv_mr *mr;
    struct ibvp_region *next;
};

struct ibvp_slot {
    uint8_t *frame;      /* HDR header bytes, then copied payload */
    uint32_t hdr_sub;    /* substream whose header frame holds, or IBVP_NO_SUB */
    void *token;         /* the core's, while posted or chained */
    struct ibv_sge *sge; /* max_sge entries */
    struct ibv_send_wr wr;
};

struct ibvp {
    struct spc_transport base;
    const struct ibvp_verbs *v;

    struct spc_frame_params *flows; /* one per substream */
    char addr_text[INET_ADDRSTRLEN];
    char ifname[IF_NAMESIZE + 8];
    char dev_name[64];
    uint8_t port;
    size_t max_payload;
    uint64_t max_poll;
    bool busy_poll;
    bool csum_offload;
    uint32_t max_sge;

    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_comp_channel *channel; /* NULL when busy-polling */
    struct ibv_cq *cq;
    struct ibv_qp *qp;
    struct ibv_mr *mr;                /* the slots */
    void *buf;
    size_t buf_len;
    bool buf_huge;

    struct ibvp_slot *slots;
    struct ibv_sge *sges;
    uint32_t n_slots, tail, n_inflight;
    uint32_t sq_depth;    /* requests the send queue holds: n_inflight + chain_len <= it */
    uint32_t chain_len, max_chain;
    struct ibv_send_wr *chain_first, *chain_last;
    uint32_t gen;
    bool armed;
    unsigned unacked_events;
    uint64_t last_progress_ns;
    int dead;             /* 0, or the error every send now returns */
    uint16_t ip_id;

    bool hw_rate;         /* the queue pair is rate limited (and the core was told so) */
    struct ibv_qp_rate_limit_attr rl;

    struct ibvp_region *regions;
    struct ibvp_region *mru;
};

/* The verbs table open uses: libibverbs in the module (module.c); the simulated
 * device in the tests, which define this function themselves. */
const struct ibvp_verbs *ibvp_verbs_in_use(void);

extern const struct spc_transport_descriptor ibvp_descriptor;
extern uint64_t ibvp_stall_ns; /* cq.c */

static inline void ibvp_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline uint64_t ibvp_now_ns(const struct ibvp *p)
{
    return p->base.svc->clock_ns();
}

/* -errno when errno is set, else -fallback. */
static inline int ibvp_errno_or(int fallback)
{
    return errno > 0 ? -errno : -fallback;
}

/* device.c */
int ibvp_find_interface(struct ibvp *p, const uint8_t ip[4], int *ifindex, uint8_t mac[6]);
int ibvp_find_device(struct ibvp *p, const uint8_t ip[4], int ifindex,
                     struct ibv_device_attr_ex *da);
int ibvp_check_interface(struct ibvp *p);

/* qp.c */
uint32_t ibvp_sq_max_wr(uint32_t max_qp_wr, uint32_t sge);
void ibvp_set_depth(struct ibvp *p, uint32_t depth);
int ibvp_qp_create(struct ibvp *p);
unsigned ibvp_qp_reset(struct ibvp *p, int status);
unsigned ibvp_fail_all(struct ibvp *p, int status);
int ibvp_die(struct ibvp *p, int rc);
int ibvp_setup_pacing(struct ibvp *p, const struct spc_transport_params *params,
                      const struct ibv_device_attr_ex *da);

/* cq.c */
void ibvp_complete_slot(struct ibvp *p, int status);
int ibvp_progress(struct ibvp *p);
int ibvp_wait_progress(struct ibvp *p);

/* send.c: ops */
int ibvp_send(struct spc_transport *t, struct spc_tx_batch *b);
int ibvp_poll(struct spc_transport *t);
int ibvp_flush(struct spc_transport *t);
int ibvp_get_fd(struct spc_transport *t);

/* mr.c */
int ibvp_alloc_slots(struct ibvp *p, const struct ibvp_options *o,
                     const struct ibv_device_attr_ex *da);
int ibvp_register_memory(struct spc_transport *t, void *addr, size_t len, void **handle);
int ibvp_deregister_memory(struct spc_transport *t, void *handle);

#endif
