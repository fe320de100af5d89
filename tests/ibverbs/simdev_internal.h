/* What the simulated NIC's files share (simdev.c: host, devices, objects; simdev_datapath.c:
 * posting, executing and completing requests). Test-only, one simulated host per process. */
#ifndef SIMDEV_INTERNAL_H
#define SIMDEV_INTERNAL_H

#include "simdev.h"

#define SIM_MAX_SGE 32
#define SIM_WQEBB 64u          /* mlx5 send-queue block */
#define SIM_WQE_BASE 48u       /* raw packet request: control + Ethernet segments */
#define SIM_WQE_PER_SGE 16u    /* one data segment */
#define SIM_ETH_HDR 14u
#define SIM_VLAN_TAG 4u

struct sim_wr {
    uint64_t wr_id;
    uint64_t seq;
    uint64_t ready_ns;
    unsigned send_flags;
    int num_sge;
    struct ibv_sge sge[SIM_MAX_SGE];
};

struct sim_ctx {
    struct ibv_context ctx;
    int dev;              /* index in the device list */
};

struct sim_mr {
    struct ibv_mr mr;
    uint64_t iova;        /* what SGE addresses of this region are counted from */
    struct sim_mr *next;
};

/* A queued completion and the requests it frees in its queue pair's send queue. */
struct sim_cqe {
    struct ibv_wc wc;
    uint32_t covers;
};

struct sim_cq {
    struct ibv_cq cq;
    struct sim_cqe *wc;   /* ring of cqe entries */
    size_t head, len;
    bool armed;
    unsigned unacked;
    struct sim_cq *next;
};

struct sim_qp {
    struct ibv_qp qp;
    uint64_t err_ns;      /* when it entered the error state */
    uint32_t max_wr, max_sge;
    struct sim_wr *q;     /* ring of max_wr requests not yet executed */
    size_t head, len;
    uint32_t busy;        /* posted requests whose covering completion is not polled */
    uint32_t uncovered;   /* executed requests no queued completion covers yet */
    bool csum_ok;         /* IBV_SEND_IP_CSUM allowed: INIT with a port, device capable */
    struct sim_qp *next;
};

/* The one simulated host (simdev_install). */
struct sim_state {
    bool installed;
    struct simdev_config cfg;
    struct ibv_device devs[2];
    struct ibv_device *list[3];
    int n_devs;
    int owner;            /* index of the device owning the interface */
    struct sim_mr *mrs;
    struct sim_qp *qps;
    struct sim_qp *orphans; /* destroyed with requests still to flush (flush_delay) */
    struct sim_cq *cqs;
    int live;
    uint64_t seq;
    uint64_t fail_seq;
    enum ibv_wc_status fail_status;
    uint64_t post_fail_seq;
    int post_fail_err;
    uint64_t delay_ns;
    uint64_t flush_delay_ns;
    bool stall;
    bool poll_fails;
    uint32_t next_key, next_qpn;
    struct simdev_frame *frames;
    size_t n_frames, cap_frames;
    struct simdev_stats st;
};
extern struct sim_state sim;

uint64_t mono_ns(void);
/* Puts q in the error state (from now, if not there already). */
void enter_error(struct sim_qp *q, uint64_t now);
void free_qp(struct sim_qp *q);
/* Counts misuse; the first one's text is kept. */
void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline struct sim_cq *cq_of(struct ibv_cq *cq)
{
    return (struct sim_cq *)(void *)cq;
}

static inline struct sim_qp *qp_of(struct ibv_qp *qp)
{
    return (struct sim_qp *)(void *)qp;
}

/* simdev_datapath.c: the verbs of the data path. */
int sim_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad);
int sim_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc);
int sim_req_notify_cq(struct ibv_cq *cq, int solicited_only);
int sim_get_cq_event(struct ibv_comp_channel *ch, struct ibv_cq **cq, void **ctx);
void sim_ack_cq_events(struct ibv_cq *cq, unsigned n);

#endif
