/* Completions: polling the completion queue, the completion channel, waiting for
 * progress and declaring a stalled device. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <string.h>

#include "ibvp.h"

/* Shortest time without a completion, while requests are in flight, after which the
 * device is taken to have stopped. A variable so the simulated-device tests can shorten
 * it. With hardware pacing the limit grows with the time the slots take to drain. */
uint64_t ibvp_stall_ns = 2000000000u;

static uint32_t ring_dist(const struct ibvp *p, uint32_t k)
{
    return (k + p->n_slots - p->tail) % p->n_slots;
}

void ibvp_complete_slot(struct ibvp *p, int status)
{
    struct ibvp_slot *s = &p->slots[p->tail];
    void *token = s->token;
    s->token = NULL;
    p->tail = (p->tail + 1) % p->n_slots;
    p->n_inflight--;
    p->base.svc->complete(&p->base, token, status);
}

/* Handles one work completion; returns the packets it completed. */
static unsigned process_wc(struct ibvp *p, const struct ibv_wc *wc)
{
    if ((uint32_t)(wc->wr_id >> 32) != p->gen)
        return 0; /* from a queue pair already replaced: its slots were failed then */
    uint32_t k = (uint32_t)wc->wr_id;
    if (k >= p->n_slots || ring_dist(p, k) >= p->n_inflight) {
        p->base.svc->log(&p->base, SPC_LOG_ERROR, "completion for slot %u, which is not in flight, ignored",
                         (unsigned)k);
        return 0;
    }
    unsigned n = ring_dist(p, k) + 1;
    /* A request that failed on its own was preceded by requests that were sent; a flush
     * (the queue pair entered the error state some other way) says nothing about them. */
    int before = wc->status == IBV_WC_WR_FLUSH_ERR ? -EIO : 0;
    for (unsigned i = 1; i < n; i++)
        ibvp_complete_slot(p, before);
    if (wc->status == IBV_WC_SUCCESS) {
        ibvp_complete_slot(p, 0);
        return n;
    }
    p->base.svc->set_error(&p->base, "work completion error on %s: %s (vendor error 0x%x); %s "
                                     "and those in flight after it fail with EIO",
                           p->dev_name, p->v->wc_status_str(wc->status), (unsigned)wc->vendor_err,
                           before ? "the packets it covers" : "the packet");
    ibvp_complete_slot(p, -EIO);
    return n + ibvp_qp_reset(p, -EIO);
}

/* Polls the completion queue once. Returns the packets completed (>= 0) or a negative
 * error; *n_wc receives the completions read. */
static int poll_once(struct ibvp *p, int *n_wc)
{
    struct ibv_wc wc[IBVP_WC_BATCH];
    int n = p->v->poll_cq(p->cq, IBVP_WC_BATCH, wc);
    *n_wc = n > 0 ? n : 0;
    if (n < 0) {
        p->base.svc->set_error(&p->base, "polling the completion queue of %s failed", p->dev_name);
        return -EIO;
    }
    unsigned done = 0;
    for (int i = 0; i < n; i++)
        done += process_wc(p, &wc[i]);
    if (n > 0)
        p->last_progress_ns = ibvp_now_ns(p);
    return (int)done;
}

/* Takes every completion event ready on the channel (non-blocking). */
static void take_events(struct ibvp *p)
{
    struct ibv_cq *cq;
    void *ctx;
    while (p->v->get_cq_event(p->channel, &cq, &ctx) == 0) {
        p->armed = false;
        if (++p->unacked_events >= IBVP_ACK_EVERY) {
            p->v->ack_cq_events(p->cq, p->unacked_events);
            p->unacked_events = 0;
        }
    }
}

static int arm(struct ibvp *p)
{
    if (p->armed)
        return 0;
    int rc = p->v->req_notify_cq(p->cq, 0);
    if (rc != 0) {
        p->base.svc->set_error(&p->base, "requesting completion events on %s failed: %s",
                               p->dev_name, strerror(rc));
        return -rc;
    }
    p->armed = true;
    return 0;
}

/* Delivers every completion that is ready, without blocking. With a channel and packets
 * still in flight it leaves the queue armed, so the channel fd signals the next one
 * (armed before the last poll, so none is missed). Returns packets completed or < 0. */
int ibvp_progress(struct ibvp *p)
{
    int total = 0;
    if (p->channel)
        take_events(p);
    for (int pass = 0; pass < 2; pass++) {
        int n_wc;
        do {
            int n = poll_once(p, &n_wc);
            if (n < 0)
                return n;
            total += n;
        } while (n_wc == IBVP_WC_BATCH);
        if (!p->channel || p->n_inflight == 0 || pass == 1 || p->armed)
            break;
        int rc = arm(p);
        if (rc < 0)
            return rc;
    }
    return total;
}

static uint64_t stall_limit_ns(const struct ibvp *p)
{
    uint64_t lim = ibvp_stall_ns;
    if (p->hw_rate && p->rl.rate_limit) {
        /* Draining every slot at the paced rate, four times over. */
        double drain = (double)p->buf_len * 8.0 / (p->rl.rate_limit * 1000.0) * 4e9;
        if (drain > (double)lim)
            lim = drain < 1e12 ? (uint64_t)drain : 1000000000000u;
    }
    return lim;
}

/* Waits until at least one packet completes (or the device is declared stalled and its
 * packets failed). Requires chain_len == 0 and n_inflight > 0. Returns packets completed
 * or a negative error. */
int ibvp_wait_progress(struct ibvp *p)
{
    for (;;) {
        for (uint64_t i = 0; i < p->max_poll; i++) {
            int n_wc, n = poll_once(p, &n_wc);
            if (n != 0 || p->n_inflight == 0)
                return n;
        }
        uint64_t now = ibvp_now_ns(p), lim = stall_limit_ns(p);
        if (now - p->last_progress_ns >= lim) {
            p->base.svc->set_error(&p->base, "%s completed nothing for %.1f s with %u packets in "
                                             "flight; they fail with ETIMEDOUT and the queue pair "
                                             "is replaced",
                                   p->dev_name, (double)(now - p->last_progress_ns) / 1e9,
                                   (unsigned)p->n_inflight);
            return (int)ibvp_qp_reset(p, -ETIMEDOUT);
        }
        if (p->busy_poll) {
            sched_yield();
            continue;
        }
        int rc = arm(p);
        if (rc < 0)
            return rc;
        int n_wc, n = poll_once(p, &n_wc);
        if (n != 0 || p->n_inflight == 0)
            return n;
        uint64_t left = lim - (now - p->last_progress_ns);
        struct pollfd pfd = {.fd = p->channel->fd, .events = POLLIN};
        int ms = (int)(left / 1000000u) + 1;
        if (poll(&pfd, 1, ms) < 0 && errno != EINTR) {
            rc = ibvp_errno_or(EIO);
            p->base.svc->set_error(&p->base, "waiting for completions of %s: %s", p->dev_name,
                                   strerror(-rc));
            return rc;
        }
        take_events(p);
    }
}
