/* The send path: building frames in slots, scatter/gather entries (zero copy from
 * registered memory), chaining and posting work requests; the send, poll, flush and
 * get_fd ops. */
#include <errno.h>
#include <string.h>

#include "ibvp.h"

static int post_chain(struct ibvp *p)
{
    if (!p->chain_len)
        return 0;
    p->chain_last->next = NULL;
    p->chain_last->send_flags |= IBV_SEND_SIGNALED;
    struct ibv_send_wr *bad = NULL;
    int rc = p->qp ? p->v->post_send(p->qp, p->chain_first, &bad) : ENOTCONN;
    if (p->n_inflight == 0)
        p->last_progress_ns = ibvp_now_ns(p);
    p->n_inflight += p->chain_len;
    p->chain_len = 0;
    p->chain_first = p->chain_last = NULL;
    if (rc == 0)
        return 0;
    /* Requests before bad went out unsignalled and would never be reported: only
     * replacing the queue pair makes their slots safe to reuse. */
    p->base.svc->set_error(&p->base, "posting work requests to %s failed: %s; the packets in "
                                     "flight fail and the queue pair is replaced",
                           p->dev_name, strerror(rc > 0 ? rc : EIO));
    ibvp_qp_reset(p, rc > 0 ? -rc : -EIO);
    return 0;
}

static const struct ibvp_region *region_of(struct ibvp *p, const void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr;
    if (p->mru && a >= p->mru->start && a < p->mru->end && len <= p->mru->end - a)
        return p->mru;
    for (struct ibvp_region *r = p->regions; r; r = r->next)
        if (a >= r->start && a < r->end && len <= r->end - a)
            return p->mru = r;
    return NULL;
}

/* Writes the slot's frame header for pkt: whole when the slot last carried another
 * substream, else only the fields that change per packet. */
static void slot_header(struct ibvp *p, struct ibvp_slot *s, uint32_t sub, size_t payload)
{
    uint16_t id = p->ip_id++;
    if (s->hdr_sub != sub) {
        p->base.svc->frame_write(&p->flows[sub], payload, id, s->frame);
        s->hdr_sub = sub;
        return;
    }
    uint8_t *ip = s->frame + SPC_FRAME_ETH_LEN;
    uint8_t *udp = ip + SPC_FRAME_IPV4_LEN;
    ibvp_put16(ip + 2, (uint16_t)(SPC_FRAME_IPV4_LEN + SPC_FRAME_UDP_LEN + payload));
    ibvp_put16(ip + 4, id);
    ibvp_put16(ip + 10, 0);
    if (!p->csum_offload)
        ibvp_put16(ip + 10, p->base.svc->ipv4_checksum(ip, SPC_FRAME_IPV4_LEN));
    ibvp_put16(udp + 4, (uint16_t)(SPC_FRAME_UDP_LEN + payload));
}

/* Scatter/gather entries for the payload: zero-copy for pieces in registered regions,
 * the rest copied into the slot. Returns the entry count, or 0 when more than max_sge
 * would be needed. */
static uint32_t build_sges(struct ibvp *p, struct ibvp_slot *s, const struct spc_tx_packet *pkt)
{
    struct ibv_sge *sge = s->sge;
    const uint32_t slot_key = p->mr->lkey;
    size_t used = HDR;
    uint32_t n = 1;
    for (uint32_t i = 0; i < pkt->n_iov; i++) {
        size_t len = pkt->iov[i].iov_len;
        if (!len)
            continue;
        const struct ibvp_region *r = region_of(p, pkt->iov[i].iov_base, len);
        uintptr_t at;
        uint32_t key;
        if (r) {
            at = (uintptr_t)pkt->iov[i].iov_base;
            key = r->mr->lkey;
        } else {
            memcpy(s->frame + used, pkt->iov[i].iov_base, len);
            at = (uintptr_t)(s->frame + used);
            key = slot_key;
            used += len;
        }
        struct ibv_sge *last = &sge[n - 1];
        if (last->lkey == key && last->addr + last->length == at) {
            last->length += (uint32_t)len;
            continue;
        }
        if (n == p->max_sge)
            return 0;
        sge[n++] = (struct ibv_sge){.addr = at, .length = (uint32_t)len, .lkey = key};
    }
    return n;
}

static void fill_slot(struct ibvp *p, uint32_t idx, struct spc_tx_packet *pkt)
{
    struct ibvp_slot *s = &p->slots[idx];
    slot_header(p, s, pkt->substream, pkt->size);
    s->sge[0] = (struct ibv_sge){.addr = (uintptr_t)s->frame, .length = HDR, .lkey = p->mr->lkey};
    uint32_t n = p->regions ? build_sges(p, s, pkt) : 0;
    if (n == 0) {
        spc_tx_packet_gather(pkt, s->frame + HDR);
        s->sge[0].length = (uint32_t)(HDR + pkt->size);
        n = 1;
    }
    memset(&s->wr, 0, sizeof s->wr);
    s->wr.wr_id = (uint64_t)p->gen << 32 | idx;
    s->wr.sg_list = s->sge;
    s->wr.num_sge = (int)n;
    s->wr.opcode = IBV_WR_SEND;
    s->wr.send_flags = p->csum_offload ? IBV_SEND_IP_CSUM : 0;
    s->token = pkt->token;
    if (p->chain_last)
        p->chain_last->next = &s->wr;
    else
        p->chain_first = &s->wr;
    p->chain_last = &s->wr;
    p->chain_len++;
    pkt->status = SPC_TX_PENDING;
}

int ibvp_send(struct spc_transport *t, struct spc_tx_batch *b)
{
    struct ibvp *p = spc_container_of(t, struct ibvp, base);
    if (p->dead)
        return p->dead;
    int rc = ibvp_progress(p);
    if (rc < 0)
        return ibvp_die(p, rc); /* no status set yet */
    for (size_t i = 0; i < b->n_packets; i++) {
        struct spc_tx_packet *pkt = spc_tx_batch_packet(b, i);
        if (pkt->size > p->max_payload) {
            pkt->status = -EMSGSIZE;
            t->svc->set_error(t, "a %zu-byte packet does not fit a frame slot (at most %zu bytes)",
                              pkt->size, p->max_payload);
            continue;
        }
        /* The send queue frees a request's place only when its completion is polled. */
        while (!p->dead && p->n_inflight + p->chain_len >= p->sq_depth) {
            post_chain(p);
            if (p->n_inflight && (rc = ibvp_wait_progress(p)) < 0)
                ibvp_die(p, rc);
        }
        if (p->dead) {
            pkt->status = p->dead;
            continue;
        }
        fill_slot(p, (p->tail + p->n_inflight + p->chain_len) % p->n_slots, pkt);
        if (p->chain_len == p->max_chain)
            post_chain(p);
    }
    post_chain(p);
    if (p->channel && p->n_inflight && !p->dead && (rc = ibvp_progress(p)) < 0)
        ibvp_die(p, rc); /* progress leaves the queue armed for get_fd */
    return 0;
}

int ibvp_poll(struct spc_transport *t)
{
    struct ibvp *p = spc_container_of(t, struct ibvp, base);
    if (p->dead)
        return p->dead;
    int rc = ibvp_progress(p);
    return rc < 0 ? ibvp_die(p, rc) : rc;
}

int ibvp_flush(struct spc_transport *t)
{
    struct ibvp *p = spc_container_of(t, struct ibvp, base);
    post_chain(p);
    while (p->n_inflight) {
        int rc = ibvp_wait_progress(p);
        if (rc < 0)
            ibvp_die(p, rc);
    }
    return p->dead;
}

int ibvp_get_fd(struct spc_transport *t)
{
    struct ibvp *p = spc_container_of(t, struct ibvp, base);
    if (!p->channel)
        return -SPC_ENOTSUP; /* busy-polling (comp_vector < 0): there is nothing to wait on */
    return p->channel->fd;
}
