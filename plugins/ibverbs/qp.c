/* The queue pair: creation and its walk to ready-to-send, the rate limit (hardware
 * pacing), and replacement after an error. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ibvp.h"

/* Limits the queue pair's rate to p->rl. Returns 0 or the verbs error (positive errno). */
static int apply_rate_limit(struct ibvp *p)
{
    int rc = p->v->modify_qp_rate_limit(p->qp, &p->rl);
    if (rc != 0 && (p->rl.max_burst_sz || p->rl.typical_pkt_sz)) {
        /* Some devices accept a rate but not the burst hints. */
        struct ibv_qp_rate_limit_attr plain = {.rate_limit = p->rl.rate_limit};
        if (p->v->modify_qp_rate_limit(p->qp, &plain) == 0) {
            p->rl = plain;
            rc = 0;
        }
    }
    return rc;
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

/* Creates the queue pair and brings it to ready-to-send. */
int ibvp_qp_create(struct ibvp *p)
{
    struct ibv_qp_init_attr a;
    memset(&a, 0, sizeof a);
    a.send_cq = p->cq;
    a.recv_cq = p->cq;
    a.cap.max_send_wr = p->n_slots;
    a.cap.max_send_sge = p->max_sge;
    a.cap.max_recv_wr = 1;
    a.cap.max_recv_sge = 1;
    a.qp_type = IBV_QPT_RAW_PACKET;
    a.sq_sig_all = 0;
    errno = 0;
    p->qp = p->v->create_qp(p->pd, &a);
    if (!p->qp) {
        int rc = ibvp_errno_or(EIO);
        p->base.svc->set_error(&p->base, "creating a raw packet queue pair on %s failed: %s%s",
                               p->dev_name, strerror(-rc),
                               rc == -EPERM ? " (raw packet queue pairs need CAP_NET_RAW)" : "");
        return rc;
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
        p->rl.max_burst_sz = params->burst_size > UINT32_MAX ? UINT32_MAX : (uint32_t)params->burst_size;
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
