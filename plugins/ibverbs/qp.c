/* The queue pair: creation and its walk to ready-to-send, the rate limit (hardware
 * pacing), and replacement after an error. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ibvp.h"

/* mlx5's rule (rdma-core providers/mlx5 calc_send_wqe and calc_sq_size): a raw packet
 * request takes a 16-byte control and a 32-byte Ethernet segment plus 16 bytes per
 * scatter/gather entry, rounded up to 64-byte blocks; the queue is a power of two of
 * bytes, and max_qp_wr counts blocks, not requests. */
uint32_t ibvp_sq_max_wr(uint32_t max_qp_wr, uint32_t sge)
{
    uint64_t wqe = (IBVP_WQE_BASE + IBVP_WQE_PER_SGE * (uint64_t)sge + IBVP_WQEBB - 1) /
                   IBVP_WQEBB * IBVP_WQEBB;
    uint64_t bytes = (uint64_t)max_qp_wr * IBVP_WQEBB, pow2 = 1;
    while (pow2 * 2 <= bytes)
        pow2 *= 2;
    uint64_t n = pow2 / wqe;
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

void ibvp_set_depth(struct ibvp *p, uint32_t depth)
{
    p->sq_depth = depth;
    p->max_chain = depth / 2 < IBVP_MAX_CHAIN ? depth / 2 : IBVP_MAX_CHAIN;
    if (p->max_chain == 0)
        p->max_chain = 1;
}

/* Limits the queue pair's rate to p->rl, dropping hints the device refuses: mlx5 takes
 * each only with its own capability (packet_pacing_burst_bound, _typical_size), which
 * verbs do not report, so the frame size goes first, then the burst bound. Returns 0 or
 * the verbs error of the first try (positive errno). */
static int apply_rate_limit(struct ibvp *p)
{
    struct ibv_qp_rate_limit_attr tries[3] = {p->rl, p->rl, {.rate_limit = p->rl.rate_limit}};
    tries[1].typical_pkt_sz = 0;
    int first = 0;
    for (size_t i = 0; i < 3; i++) {
        if (i > 0 && !memcmp(&tries[i], &tries[i - 1], sizeof tries[i]))
            continue;
        int rc = p->v->modify_qp_rate_limit(p->qp, &tries[i]);
        if (rc == 0) {
            p->rl = tries[i];
            return 0;
        }
        first = first ? first : rc;
    }
    return first;
}

/* Whether the core can be told who paces (svc->set_hw_paced, transport ABI minor 2). */
static bool core_takes_pacing(const struct ibvp *p)
{
    return SPC_HAS_FIELD(p->base.svc, struct spc_core_services, set_hw_paced) &&
           p->base.svc->set_hw_paced;
}

/* A replacement queue pair refused the rate: the core paces from now on. */
static void withdraw_hw_rate(struct ibvp *p, const char *why)
{
    p->hw_rate = false;
    if (core_takes_pacing(p)) {
        p->base.svc->log(&p->base, SPC_LOG_WARNING, "%s stopped pacing this stream in "
                         "hardware (%s); the core paces it in software", p->dev_name, why);
        p->base.svc->set_hw_paced(&p->base, false);
    } else {
        p->base.svc->log(&p->base, SPC_LOG_ERROR, "%s stopped pacing this stream in hardware "
                         "(%s), and the core (transport ABI minor %u) cannot take over: the "
                         "stream is no longer paced", p->dev_name, why,
                         (unsigned)p->base.svc->abi_minor);
    }
}

/* A send-only raw packet queue pair (no receive queue) of depth requests, or NULL
 * with errno set. */
static struct ibv_qp *make_qp(struct ibvp *p, uint32_t depth)
{
    struct ibv_qp_init_attr a;
    memset(&a, 0, sizeof a);
    a.send_cq = p->cq;
    a.recv_cq = p->cq;
    a.cap.max_send_wr = depth;
    a.cap.max_send_sge = p->max_sge;
    a.qp_type = IBV_QPT_RAW_PACKET;
    a.sq_sig_all = 0;
    errno = 0;
    return p->v->create_qp(p->pd, &a);
}

/* Creates the queue pair and brings it to ready-to-send. A device that refuses the
 * send queue's size (EINVAL, ENOMEM: its limit is not what it reports) gets smaller
 * powers of two; the depth it takes holds from then on, with a warning. */
int ibvp_qp_create(struct ibvp *p)
{
    uint32_t depth = p->sq_depth;
    int rc = 0;
    while (!(p->qp = make_qp(p, depth))) {
        rc = ibvp_errno_or(EIO);
        if ((rc != -EINVAL && rc != -ENOMEM) || depth == 1)
            break;
        uint32_t smaller = 1;
        while (smaller * 2 < depth)
            smaller *= 2;
        depth = smaller;
    }
    if (!p->qp) {
        p->base.svc->set_error(&p->base, "creating a raw packet queue pair on %s failed: %s%s",
                               p->dev_name, strerror(-rc),
                               rc == -EPERM ? " (raw packet queue pairs need CAP_NET_RAW)" : "");
        return rc;
    }
    if (depth != p->sq_depth) {
        p->base.svc->log(&p->base, SPC_LOG_WARNING, "%s refused a send queue of %u requests of "
                         "%u entries (%s); using %u, so fewer packets are in flight",
                         p->dev_name, (unsigned)p->sq_depth, (unsigned)p->max_sge,
                         strerror(-rc), (unsigned)depth);
        ibvp_set_depth(p, depth);
    }
    static const struct {
        enum ibv_qp_state state;
        const char *name;
    } steps[] = {{IBV_QPS_INIT, "INIT"}, {IBV_QPS_RTR, "RTR"}, {IBV_QPS_RTS, "RTS"}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct ibv_qp_attr qa;
        memset(&qa, 0, sizeof qa);
        qa.qp_state = steps[i].state;
        int mask = IBV_QP_STATE;
        if (steps[i].state == IBV_QPS_INIT) {
            qa.port_num = p->port;
            mask |= IBV_QP_PORT;
        }
        int rc = p->v->modify_qp(p->qp, &qa, mask);
        if (rc != 0) {
            p->base.svc->set_error(&p->base, "moving the queue pair on %s port %u to %s failed: %s",
                                   p->dev_name, (unsigned)p->port, steps[i].name, strerror(rc));
            p->v->destroy_qp(p->qp);
            p->qp = NULL;
            return -rc;
        }
    }
    if (p->hw_rate) {
        int rc = apply_rate_limit(p);
        if (rc != 0) {
            char why[128];
            snprintf(why, sizeof why, "rate limit refused on the new queue pair: %s", strerror(rc));
            withdraw_hw_rate(p, why);
        }
    }
    return 0;
}

/* Fails every posted and chained slot with status. */
unsigned ibvp_fail_all(struct ibvp *p, int status)
{
    unsigned n = p->n_inflight + p->chain_len;
    p->n_inflight = n;
    p->chain_len = 0;
    p->chain_first = p->chain_last = NULL;
    for (unsigned i = 0; i < n; i++)
        ibvp_complete_slot(p, status);
    return n;
}

/* Replaces the queue pair: destroys it (the device then uses no slot), fails what was in
 * flight with status and makes a new one. */
unsigned ibvp_qp_reset(struct ibvp *p, int status)
{
    if (p->qp)
        p->v->destroy_qp(p->qp);
    p->qp = NULL;
    unsigned n = ibvp_fail_all(p, status);
    p->gen++;
    int rc = ibvp_qp_create(p);
    if (rc < 0)
        p->dead = rc;
    p->last_progress_ns = ibvp_now_ns(p);
    return n;
}

/* After an error the plugin cannot recover from: the queue pair goes (so the device
 * reads no slot or registered memory any more), what was in flight fails with rc, and
 * every later send returns rc. */
int ibvp_die(struct ibvp *p, int rc)
{
    if (p->qp)
        p->v->destroy_qp(p->qp);
    p->qp = NULL;
    ibvp_fail_all(p, rc);
    p->dead = rc;
    return rc;
}

/* Rate limits the queue pair when the stream asks for hardware pacing and the device can
 * do it, and tells the core; otherwise the core paces. Needs p->qp. Returns 0, or
 * -SPC_ENOTSUP where the device cannot pace and a core older than ABI minor 2 would not
 * pace either (it takes the hw-rate capability as a promise). */
int ibvp_setup_pacing(struct ibvp *p, const struct spc_transport_params *params,
                        const struct ibv_device_attr_ex *da)
{
    if (params->rate_method != SPC_RATE_METHOD_HW || !(params->rate > 0))
        return 0; /* the core paces (or nothing does) */
    const struct ibv_packet_pacing_caps *pc = &da->packet_pacing_caps;
    char why[160];
    size_t frame = p->max_payload + HDR;
    /* The device counts whole frames; the stream's rate counts SPEAD packet bytes. */
    double kbps = params->rate * 8.0 / 1000.0 * (double)frame / (double)p->max_payload;
    if (!pc->qp_rate_limit_max || !(pc->supported_qpts & (1u << IBV_QPT_RAW_PACKET))) {
        snprintf(why, sizeof why, "the device does not pace raw packet queue pairs");
    } else if (kbps < pc->qp_rate_limit_min || kbps > pc->qp_rate_limit_max) {
        snprintf(why, sizeof why, "%.0f kb/s is outside its pacing range %u..%u kb/s", kbps,
                 (unsigned)pc->qp_rate_limit_min, (unsigned)pc->qp_rate_limit_max);
    } else {
        p->rl.rate_limit = (uint32_t)llround(kbps);
        /* A burst bound below one frame would stall it (spead2 passes the larger too). */
        uint64_t burst = params->burst_size > frame ? params->burst_size : frame;
        p->rl.max_burst_sz = burst > UINT32_MAX ? UINT32_MAX : (uint32_t)burst;
        p->rl.typical_pkt_sz = frame > UINT16_MAX ? UINT16_MAX : (uint16_t)frame;
        int rc = apply_rate_limit(p);
        if (rc == 0) {
            p->hw_rate = true;
            if (core_takes_pacing(p))
                p->base.svc->set_hw_paced(&p->base, true);
            p->base.svc->log(&p->base, SPC_LOG_INFO, "%s paces the stream in hardware at %u kb/s",
                             p->dev_name, (unsigned)p->rl.rate_limit);
            return 0;
        }
        snprintf(why, sizeof why, "setting the rate limit failed: %s", strerror(rc));
    }
    if (!core_takes_pacing(p)) {
        p->base.svc->set_error(&p->base, "%s cannot pace this stream in hardware (%s), and the "
                               "core (transport ABI minor %u) cannot pace it in software for "
                               "this transport: minor 2 or later is needed", p->dev_name, why,
                               (unsigned)p->base.svc->abi_minor);
        return -SPC_ENOTSUP;
    }
    p->base.svc->log(&p->base, SPC_LOG_WARNING, "%s cannot pace this stream in hardware (%s)",
                     p->dev_name, why);
    return 0;
}
