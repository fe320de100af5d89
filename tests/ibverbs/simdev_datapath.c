/* The simulated NIC's data path (simdev.h): posting requests, executing them when due
 * (reading their memory then, applying the MTU), queuing and polling completions,
 * send-queue places and completion-channel events. */
#include "simdev_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* Queues wc, which covers every request of q executed since q's previous completion. */
static void push_cqe(struct sim_cq *cq, struct sim_qp *q, const struct ibv_wc *wc)
{
    if (cq->len == (size_t)cq->cq.cqe) {
        violation("completion queue overflow (%d entries)", cq->cq.cqe);
        return;
    }
    cq->wc[(cq->head + cq->len) % (size_t)cq->cq.cqe] = (struct sim_cqe){*wc, q->uncovered};
    q->uncovered = 0;
    cq->len++;
    sim.st.cqes++;
}

static enum ibv_wc_status check_sges(const struct sim_qp *q, const struct sim_wr *w, size_t *len)
{
    *len = 0;
    for (int i = 0; i < w->num_sge; i++) {
        const struct ibv_sge *s = &w->sge[i];
        const struct sim_mr *m = sim.mrs;
        for (; m; m = m->next) {
            if (m->mr.lkey == s->lkey && m->mr.pd == q->qp.pd && s->addr >= m->iova &&
                s->addr + s->length <= m->iova + m->mr.length)
                break;
        }
        if (!m) {
            sim.st.lkey_errors++;
            return IBV_WC_LOC_PROT_ERR;
        }
        *len += s->length;
    }
    return *len > sim.cfg.max_frame ? IBV_WC_LOC_LEN_ERR : IBV_WC_SUCCESS;
}

/* Host address of an SGE (a checked one: inside a region). */
static const void *sge_host(const struct ibv_sge *s)
{
    for (const struct sim_mr *m = sim.mrs; m; m = m->next)
        if (m->mr.lkey == s->lkey)
            return (const uint8_t *)m->mr.addr + (s->addr - m->iova);
    return NULL;
}

/* Whether the port sends a frame of len bytes: its IP packet must fit the MTU. */
static bool fits_mtu(const struct sim_wr *w, size_t len)
{
    size_t l2 = SIM_ETH_HDR;
    const uint8_t *first = sge_host(&w->sge[0]);
    if (first && w->sge[0].length >= 14 && first[12] == 0x81 && first[13] == 0x00)
        l2 += SIM_VLAN_TAG;
    return len <= (size_t)sim.cfg.mtu + l2;
}

static void record_frame(const struct sim_wr *w, size_t len)
{
    if (sim.n_frames == sim.cap_frames) {
        size_t cap = sim.cap_frames ? 2 * sim.cap_frames : 256;
        struct simdev_frame *f = realloc(sim.frames, cap * sizeof *f);
        if (!f) {
            violation("simulator out of memory");
            return;
        }
        sim.frames = f;
        sim.cap_frames = cap;
    }
    struct simdev_frame *f = &sim.frames[sim.n_frames];
    memset(f, 0, sizeof *f);
    if (!(f->data = malloc(len ? len : 1))) {
        violation("simulator out of memory");
        return;
    }
    size_t off = 0;
    for (int i = 0; i < w->num_sge; i++) {
        memcpy(f->data + off, sge_host(&w->sge[i]), w->sge[i].length);
        off += w->sge[i].length;
        f->sge[i] = (struct simdev_sge){w->sge[i].addr, w->sge[i].length, w->sge[i].lkey};
    }
    f->len = len;
    f->seq = w->seq;
    f->send_flags = w->send_flags;
    f->num_sge = w->num_sge;
    sim.n_frames++;
}

/* Executes the requests of q that are due at now, in order. */
static void run_qp(struct sim_qp *q, uint64_t now)
{
    struct sim_cq *cq = cq_of(q->qp.send_cq);
    while (q->len) {
        struct sim_wr *w = &q->q[q->head];
        enum ibv_wc_status st;
        size_t len = 0;
        if (q->qp.state == IBV_QPS_RTS) {
            if (sim.stall || w->ready_ns > now)
                break;
            st = w->seq == sim.fail_seq ? sim.fail_status : check_sges(q, w, &len);
        } else if (q->qp.state == IBV_QPS_ERR) {
            if (now < q->err_ns + sim.flush_delay_ns)
                break;
            st = IBV_WC_WR_FLUSH_ERR;
        } else {
            break;
        }
        q->head = (q->head + 1) % q->max_wr;
        q->len--;
        q->uncovered++;
        sim.st.executed++;
        if (st == IBV_WC_SUCCESS && !fits_mtu(w, len)) {
            sim.st.mtu_dropped++; /* gone, yet completed successfully */
        } else if (st == IBV_WC_SUCCESS) {
            record_frame(w, len);
        } else {
            sim.st.wc_errors++;
            enter_error(q, now);
        }
        bool flushed = st == IBV_WC_WR_FLUSH_ERR;
        if ((w->send_flags & IBV_SEND_SIGNALED) || (st != IBV_WC_SUCCESS && !flushed) ||
            (flushed && sim.cfg.flush_every_wr)) {
            struct ibv_wc wc = {.wr_id = w->wr_id, .status = st, .opcode = IBV_WC_SEND,
                                .qp_num = q->qp.qp_num, .vendor_err = st ? 0x42 : 0};
            push_cqe(cq, q, &wc);
        }
    }
}

static void run_cq(struct ibv_cq *cq, uint64_t now)
{
    for (struct sim_qp *q = sim.qps; q; q = q->next)
        if (q->qp.send_cq == cq)
            run_qp(q, now);
    for (struct sim_qp **pp = &sim.orphans; *pp;) {
        struct sim_qp *q = *pp;
        if (q->qp.send_cq == cq)
            run_qp(q, now);
        if (q->len) {
            pp = &q->next;
        } else {
            *pp = q->next;
            free_qp(q);
        }
    }
}

/* Whether w will queue a completion when it executes. */
static bool will_complete(const struct sim_qp *q, const struct sim_wr *w)
{
    return (w->send_flags & IBV_SEND_SIGNALED) || w->seq == sim.fail_seq ||
           (q->qp.state == IBV_QPS_ERR && sim.cfg.flush_every_wr);
}

/* For an armed queue: sets the channel's timer to when the next completion is due. */
static void schedule(struct sim_cq *cq)
{
    if (!cq->armed || !cq->cq.channel)
        return;
    uint64_t due = UINT64_MAX;
    for (struct sim_qp *q = sim.qps; q; q = q->next) {
        if (q->qp.send_cq != &cq->cq)
            continue;
        for (size_t i = 0; i < q->len; i++) {
            const struct sim_wr *w = &q->q[(q->head + i) % q->max_wr];
            if (q->qp.state == IBV_QPS_RTS && sim.stall)
                break;
            if (will_complete(q, w)) {
                uint64_t t = q->qp.state == IBV_QPS_ERR ? q->err_ns + sim.flush_delay_ns : w->ready_ns;
                if (t < due)
                    due = t;
                break;
            }
        }
    }
    if (due == UINT64_MAX)
        return;
    struct itimerspec its = {{0, 0}, {(time_t)(due / 1000000000u), (long)(due % 1000000000u)}};
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    timerfd_settime(cq->cq.channel->fd, TFD_TIMER_ABSTIME, &its, NULL);
}

int sim_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
    struct sim_qp *q = qp_of(qp);
    *bad = NULL;
    if (qp->state != IBV_QPS_RTS && qp->state != IBV_QPS_ERR) {
        violation("post_send in queue pair state %d", (int)qp->state);
        *bad = wr;
        return EINVAL;
    }
    uint64_t now = simdev_now_ns(), n = 0;
    int rc = 0;
    bool last_signaled = false;
    for (struct ibv_send_wr *w = wr; w; w = w->next) {
        if (sim.seq == sim.post_fail_seq) {
            rc = sim.post_fail_err;
            sim.post_fail_seq = UINT64_MAX; /* one shot */
        } else if (w->num_sge < 1 || (uint32_t)w->num_sge > q->max_sge) {
            sim.st.sge_refused++;
            rc = EINVAL;
        } else if (w->opcode != IBV_WR_SEND) {
            violation("post_send opcode %d on a raw packet queue pair", (int)w->opcode);
            rc = EINVAL;
        } else if ((w->send_flags & IBV_SEND_IP_CSUM) && !q->csum_ok) {
            violation("IBV_SEND_IP_CSUM on a queue pair %s", sim.cfg.raw_ip_csum
                      ? "that did not go to INIT with a port" : "of a device without IBV_DEVICE_RAW_IP_CSUM");
            rc = EINVAL;
        } else if (q->busy == q->max_wr) {
            /* mlx5: space returns only when the covering completion is polled. */
            sim.st.sq_full++;
            violation("send queue full (%u requests posted whose completion was not polled)",
                      q->max_wr);
            rc = ENOMEM;
        }
        if (rc) {
            *bad = w;
            break;
        }
        struct sim_wr *s = &q->q[(q->head + q->len) % q->max_wr];
        s->wr_id = w->wr_id;
        s->seq = sim.seq++;
        s->ready_ns = now + sim.delay_ns;
        s->send_flags = w->send_flags;
        s->num_sge = w->num_sge;
        memcpy(s->sge, w->sg_list, (size_t)w->num_sge * sizeof *s->sge);
        q->len++;
        q->busy++;
        n++;
        last_signaled = (w->send_flags & IBV_SEND_SIGNALED) != 0;
        if (last_signaled && w->next)
            sim.st.chains_mid_signaled++;
        sim.st.signaled += last_signaled;
    }
    if (n) {
        sim.st.post_calls++;
        sim.st.wrs_posted += n;
        if (n > sim.st.max_chain)
            sim.st.max_chain = n;
        if (last_signaled && !rc)
            sim.st.chains_last_signaled++;
    }
    schedule(cq_of(qp->send_cq));
    return rc;
}

int sim_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
    struct sim_cq *q = cq_of(cq);
    if (sim.poll_fails)
        return -1;
    run_cq(cq, simdev_now_ns());
    int got = 0;
    while (got < n && q->len) {
        const struct sim_cqe *e = &q->wc[q->head];
        for (struct sim_qp *p = sim.qps; p; p = p->next)
            if (p->qp.qp_num == e->wc.qp_num)
                p->busy -= e->covers < p->busy ? e->covers : p->busy;
        wc[got++] = e->wc;
        q->head = (q->head + 1) % (size_t)cq->cqe;
        q->len--;
    }
    return got;
}

int sim_req_notify_cq(struct ibv_cq *cq, int solicited_only)
{
    (void)solicited_only;
    struct sim_cq *q = cq_of(cq);
    if (!cq->channel) {
        violation("req_notify_cq on a completion queue without a channel");
        return EINVAL;
    }
    sim.st.arms++;
    /* What is due already lands before the arming, so it raises no event. */
    run_cq(cq, simdev_now_ns());
    q->armed = true;
    schedule(q);
    return 0;
}

int sim_get_cq_event(struct ibv_comp_channel *ch, struct ibv_cq **cq, void **ctx)
{
    uint64_t ticks;
    if (read(ch->fd, &ticks, sizeof ticks) != (ssize_t)sizeof ticks)
        return -1; /* errno from read: EAGAIN when nothing is due */
    for (struct sim_cq *q = sim.cqs; q; q = q->next) {
        if (q->cq.channel == ch && q->armed) {
            q->armed = false;
            q->unacked++;
            sim.st.events++;
            *cq = &q->cq;
            *ctx = q->cq.cq_context;
            return 0;
        }
    }
    errno = EAGAIN; /* nothing armed: a stale timer */
    return -1;
}

void sim_ack_cq_events(struct ibv_cq *cq, unsigned n)
{
    struct sim_cq *q = cq_of(cq);
    if (n > q->unacked) {
        violation("ack_cq_events(%u) with %u unacknowledged", n, q->unacked);
        n = q->unacked;
    }
    q->unacked -= n;
}
