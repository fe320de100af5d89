/* The ibverbs transport (SPEC §4): raw Ethernet frames through a RAW_PACKET queue pair
 * on an RDMA NIC, bypassing the kernel.
 *
 * Slots: one buffer (huge pages when the system has them) registered once, cut into
 * n_slots slots of SPC_FRAME_HEADER_LEN + max payload bytes. Slots are used as a ring:
 * [tail, tail + n_inflight) are posted, the next chain_len are being chained, the rest
 * are free. A slot keeps the Ethernet/IPv4/UDP header of the substream it last carried
 * (hdr_sub), so a packet only patches the IPv4 total length, id and checksum and the UDP
 * length, unless its substream differs.
 *
 * Payload: pieces inside memory registered through register_memory go out zero-copy as
 * their own scatter/gather entries (adjacent pieces of one region merged); other pieces
 * are copied into the slot behind the header. A packet that would need more entries than
 * the queue pair allows is copied whole.
 *
 * Work requests: chained up to max_chain, posted with one call; only the last of a chain
 * is signalled. Invariant: every posted chain ends with a signalled request, so each
 * posted slot is eventually covered by a completion. Completions arrive in posting
 * order; a completion for slot k therefore completes every slot from tail to k: those
 * before k were sent, k carries the completion's status. wr_id is (qp generation << 32
 * | slot): completions of a queue pair that has been replaced are ignored.
 *
 * Errors: a failed work completion puts the queue pair in the error state, which flushes
 * every later request. The packet it names fails with -EIO; the queue pair is destroyed
 * (after which the device touches none of the slots), the packets still in flight fail
 * with -EIO and a new queue pair takes over. A post that fails part-way, and a device
 * that stops completing (no progress for stall_ns), are handled the same way (with the
 * post error and -ETIMEDOUT). Only when a new queue pair cannot be made is the
 * transport dead: every later send returns that error.
 *
 * Pacing: with rate_method "hw" and a rate, the queue pair is rate limited with
 * ibv_modify_qp_rate_limit when the device paces raw packet queue pairs at that rate, and
 * open reports it with svc->set_hw_paced(true), so the core's software limiter stands
 * down. Otherwise the core paces (the default). Should a replacement queue pair refuse
 * the rate, hardware pacing is withdrawn (set_hw_paced(false)) and the core paces from
 * then on. The plugin never paces in software itself.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <math.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "ibvp_verbs.h"
#include "speadcast/transport.h"

#define HDR SPC_FRAME_HEADER_LEN
#define IBVP_MAX_SGE 16u          /* scatter/gather entries asked for per request */
#define IBVP_MAX_CHAIN 64u        /* work requests per post */
#define IBVP_WC_BATCH 16          /* completions per poll_cq */
#define IBVP_SLOT_ALIGN 64u
#define IBVP_HUGE_PAGE (2u << 20)
#define IBVP_ACK_EVERY 32u        /* completion events acknowledged in groups */
#define IBVP_NO_SUB UINT32_MAX

/* Shortest time without a completion, while requests are in flight, after which the
 * device is taken to have stopped. A variable so the simulated-device tests can shorten
 * it. With hardware pacing the limit grows with the time the slots take to drain. */
static uint64_t ibvp_stall_ns = 2000000000u;

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

static const struct spc_option ibvp_option_table[] = {
    {SPC_OPTION_INIT, .name = "endpoints", .type = SPC_OPT_ENDPOINTS,
     .offset = offsetof(struct ibvp_options, endpoints), .flags = SPC_OPT_REQUIRED,
     .min_count = 1,
     .help = "IPv4 multicast group and UDP port of each substream, \"group:port\"; unicast "
             "destinations are refused (the transport does no neighbour resolution)"},
    {SPC_OPTION_INIT, .name = "interface_address", .type = SPC_OPT_STRING,
     .offset = offsetof(struct ibvp_options, interface_address), .flags = SPC_OPT_REQUIRED,
     .min_count = 1,
     .help = "IPv4 address of the local interface to send from; the RDMA device owning "
             "that interface sends, with its Ethernet and IP address as source"},
    {SPC_OPTION_INIT, .name = "buffer_size", .type = SPC_OPT_UINT,
     .offset = offsetof(struct ibvp_options, buffer_size),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 524288, .min.u = 1,
     .max.u = 1073741824,
     .help = "bytes of registered packet slots (each max_packet_size + 42 bytes, rounded up "
             "to 64); at least one slot is made"},
    {SPC_OPTION_INIT, .name = "ttl", .type = SPC_OPT_UINT,
     .offset = offsetof(struct ibvp_options, ttl),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MAX, .def.u = 1, .max.u = 255,
     .help = "IPv4 time-to-live of the frames"},
    {SPC_OPTION_INIT, .name = "comp_vector", .type = SPC_OPT_INT,
     .offset = offsetof(struct ibvp_options, comp_vector),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.i = 0, .min.i = -2147483647,
     .max.i = 2147483647,
     .help = "completion vector (interrupt) for waiting on completions, taken modulo the "
             "device's vectors; negative = busy-poll without interrupts"},
    {SPC_OPTION_INIT, .name = "max_poll", .type = SPC_OPT_UINT,
     .offset = offsetof(struct ibvp_options, max_poll),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 10, .min.u = 1,
     .max.u = 1000000,
     .help = "times the completion queue is polled in a row before waiting for an "
             "interrupt (or, when busy-polling, yielding the CPU)"},
};

/* ------------------------------------------------------------ the verbs in use */

#ifdef SPC_IBV_TESTING
/* Built into a test binary (tests/unit/test_ibverbs_sim.c): the test sets the table. */
static const struct ibvp_verbs *ibvp_verbs_table;
#else
static const char *real_get_device_name(struct ibv_device *d)
{
    return ibv_get_device_name(d);
}
static struct ibv_device **real_get_device_list(int *n)
{
    return ibv_get_device_list(n);
}
static int real_query_device_ex(struct ibv_context *c, struct ibv_device_attr_ex *a)
{
    return ibv_query_device_ex(c, NULL, a);
}
static int real_query_port(struct ibv_context *c, uint8_t port, struct ibv_port_attr *a)
{
    return ibv_query_port(c, port, a);
}
static int real_query_gid_ex(struct ibv_context *c, uint32_t port, uint32_t index,
                             struct ibv_gid_entry *e)
{
    return ibv_query_gid_ex(c, port, index, e, 0);
}
static struct ibv_mr *real_reg_mr(struct ibv_pd *pd, void *addr, size_t len, int access)
{
    return ibv_reg_mr(pd, addr, len, access);
}
static int real_modify_qp_rate_limit(struct ibv_qp *qp, struct ibv_qp_rate_limit_attr *a)
{
    return ibv_modify_qp_rate_limit(qp, a);
}
static int real_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
    return ibv_post_send(qp, wr, bad);
}
static int real_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
    return ibv_poll_cq(cq, n, wc);
}
static int real_req_notify_cq(struct ibv_cq *cq, int solicited_only)
{
    return ibv_req_notify_cq(cq, solicited_only);
}

static const struct ibvp_verbs ibvp_real_verbs = {
    .getifaddrs = getifaddrs,
    .freeifaddrs = freeifaddrs,
    .get_device_list = real_get_device_list,
    .free_device_list = ibv_free_device_list,
    .get_device_name = real_get_device_name,
    .open_device = ibv_open_device,
    .close_device = ibv_close_device,
    .query_device_ex = real_query_device_ex,
    .query_port = real_query_port,
    .query_gid_ex = real_query_gid_ex,
    .wc_status_str = ibv_wc_status_str,
    .alloc_pd = ibv_alloc_pd,
    .dealloc_pd = ibv_dealloc_pd,
    .reg_mr = real_reg_mr,
    .dereg_mr = ibv_dereg_mr,
    .create_comp_channel = ibv_create_comp_channel,
    .destroy_comp_channel = ibv_destroy_comp_channel,
    .create_cq = ibv_create_cq,
    .destroy_cq = ibv_destroy_cq,
    .create_qp = ibv_create_qp,
    .modify_qp = ibv_modify_qp,
    .destroy_qp = ibv_destroy_qp,
    .modify_qp_rate_limit = real_modify_qp_rate_limit,
    .post_send = real_post_send,
    .poll_cq = real_poll_cq,
    .req_notify_cq = real_req_notify_cq,
    .get_cq_event = ibv_get_cq_event,
    .ack_cq_events = ibv_ack_cq_events,
};
static const struct ibvp_verbs *const ibvp_verbs_table = &ibvp_real_verbs;
#endif

/* ------------------------------------------------------------ small helpers */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint64_t now_ns(const struct ibvp *p)
{
    return p->base.svc->clock_ns();
}

static int errno_or(int fallback)
{
    return errno > 0 ? -errno : -fallback;
}

/* ------------------------------------------------------------ finding the device */

/* The interface holding ip: its name, index and Ethernet address. */
static int find_interface(struct ibvp *p, const uint8_t ip[4], int *ifindex, uint8_t mac[6])
{
    struct ifaddrs *list = NULL;
    if (p->v->getifaddrs(&list) < 0) {
        int rc = errno_or(EIO);
        p->base.svc->set_error(&p->base, "cannot list network interfaces to find %s: %s",
                               p->addr_text, strerror(-rc));
        return rc;
    }
    const char *name = NULL;
    for (struct ifaddrs *a = list; a && !name; a = a->ifa_next) {
        if (a->ifa_addr && a->ifa_addr->sa_family == AF_INET &&
            !memcmp(&((const struct sockaddr_in *)(const void *)a->ifa_addr)->sin_addr, ip, 4))
            name = a->ifa_name;
    }
    if (!name) {
        p->v->freeifaddrs(list);
        p->base.svc->set_error(&p->base, "interface_address %s is not an address of any "
                                         "network interface on this host, so no RDMA device "
                                         "owns it", p->addr_text);
        return -ENODEV;
    }
    snprintf(p->ifname, sizeof p->ifname, "%s", name);
    /* An address label ("eth0:1") names its device without the suffix. */
    size_t base_len = strcspn(p->ifname, ":");
    bool found = false;
    for (struct ifaddrs *a = list; a && !found; a = a->ifa_next) {
        if (!a->ifa_addr || a->ifa_addr->sa_family != AF_PACKET ||
            strlen(a->ifa_name) != base_len || strncmp(a->ifa_name, p->ifname, base_len))
            continue;
        const struct sockaddr_ll *ll = (const struct sockaddr_ll *)(const void *)a->ifa_addr;
        if (ll->sll_halen != 6)
            continue;
        *ifindex = ll->sll_ifindex;
        memcpy(mac, ll->sll_addr, 6);
        found = true;
    }
    p->v->freeifaddrs(list);
    if (!found) {
        p->base.svc->set_error(&p->base, "interface %s (address %s) has no Ethernet address, "
                                         "so no RDMA device owns it for raw Ethernet frames",
                               p->ifname, p->addr_text);
        return -ENODEV;
    }
    return 0;
}

/* Whether a port of ctx carries the interface: a GID entry on the interface's net
 * device, or the IPv4-mapped GID of the address (RoCE). Sets *port. */
static bool device_owns(struct ibvp *p, struct ibv_context *ctx, const struct ibv_device_attr_ex *da,
                        const uint8_t ip[4], int ifindex, uint8_t *port)
{
    union ibv_gid mapped;
    memset(&mapped, 0, sizeof mapped);
    mapped.raw[10] = mapped.raw[11] = 0xff;
    memcpy(&mapped.raw[12], ip, 4);
    for (unsigned pn = 1; pn <= da->orig_attr.phys_port_cnt; pn++) {
        struct ibv_port_attr pa;
        memset(&pa, 0, sizeof pa);
        if (p->v->query_port(ctx, (uint8_t)pn, &pa) != 0 ||
            pa.link_layer != IBV_LINK_LAYER_ETHERNET)
            continue;
        for (int g = 0; g < pa.gid_tbl_len; g++) {
            struct ibv_gid_entry e;
            memset(&e, 0, sizeof e);
            if (p->v->query_gid_ex(ctx, pn, (uint32_t)g, &e) != 0)
                continue;
            if ((ifindex > 0 && e.ndev_ifindex == (uint32_t)ifindex) ||
                !memcmp(e.gid.raw, mapped.raw, sizeof mapped.raw)) {
                *port = (uint8_t)pn;
                return true;
            }
        }
    }
    return false;
}

/* Opens the RDMA device owning the interface of ip; fills p->ctx, port, dev_name, *da. */
static int find_device(struct ibvp *p, const uint8_t ip[4], int ifindex,
                       struct ibv_device_attr_ex *da)
{
    int n = 0;
    errno = 0;
    struct ibv_device **list = p->v->get_device_list(&n);
    if (!list) {
        int e = errno ? errno : ENODEV;
        p->base.svc->set_error(&p->base, "no RDMA device owns interface address %s (%s): "
                                         "listing RDMA devices failed: %s",
                               p->addr_text, p->ifname, strerror(e));
        return -ENODEV;
    }
    char seen[256] = "";
    size_t used = 0;
    for (int i = 0; i < n && !p->ctx; i++) {
        const char *name = p->v->get_device_name(list[i]);
        name = name ? name : "?";
        struct ibv_context *ctx = p->v->open_device(list[i]);
        const char *why = "";
        if (ctx) {
            memset(da, 0, sizeof *da);
            if (p->v->query_device_ex(ctx, da) == 0 && device_owns(p, ctx, da, ip, ifindex, &p->port)) {
                p->ctx = ctx;
                snprintf(p->dev_name, sizeof p->dev_name, "%s", name);
                break;
            }
            p->v->close_device(ctx);
        } else {
            why = " (cannot be opened)";
        }
        if (used < sizeof seen) {
            int w = snprintf(seen + used, sizeof seen - used, "%s%s%s", used ? ", " : "", name, why);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    p->v->free_device_list(list);
    if (!p->ctx) {
        p->base.svc->set_error(&p->base, "no RDMA device owns interface address %s (%s); "
                                         "RDMA devices present: %s",
                               p->addr_text, p->ifname, n > 0 ? seen : "none");
        return -ENODEV;
    }
    return 0;
}

/* ------------------------------------------------------------ queue pair */

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
static int qp_create(struct ibvp *p)
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
        int rc = errno_or(EIO);
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

/* ------------------------------------------------------------ completions */

static uint32_t ring_dist(const struct ibvp *p, uint32_t k)
{
    return (k + p->n_slots - p->tail) % p->n_slots;
}

static void complete_slot(struct ibvp *p, int status)
{
    struct ibvp_slot *s = &p->slots[p->tail];
    void *token = s->token;
    s->token = NULL;
    p->tail = (p->tail + 1) % p->n_slots;
    p->n_inflight--;
    p->base.svc->complete(&p->base, token, status);
}

/* Fails every posted and chained slot with status. */
static unsigned fail_all(struct ibvp *p, int status)
{
    unsigned n = p->n_inflight + p->chain_len;
    p->n_inflight = n;
    p->chain_len = 0;
    p->chain_first = p->chain_last = NULL;
    for (unsigned i = 0; i < n; i++)
        complete_slot(p, status);
    return n;
}

/* Replaces the queue pair: destroys it (the device then uses no slot), fails what was in
 * flight with status and makes a new one. */
static unsigned qp_reset(struct ibvp *p, int status)
{
    if (p->qp)
        p->v->destroy_qp(p->qp);
    p->qp = NULL;
    unsigned n = fail_all(p, status);
    p->gen++;
    int rc = qp_create(p);
    if (rc < 0)
        p->dead = rc;
    p->last_progress_ns = now_ns(p);
    return n;
}

/* After an error the plugin cannot recover from: the queue pair goes (so the device
 * reads no slot or registered memory any more), what was in flight fails with rc, and
 * every later send returns rc. */
static int die(struct ibvp *p, int rc)
{
    if (p->qp)
        p->v->destroy_qp(p->qp);
    p->qp = NULL;
    fail_all(p, rc);
    p->dead = rc;
    return rc;
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
        complete_slot(p, before);
    if (wc->status == IBV_WC_SUCCESS) {
        complete_slot(p, 0);
        return n;
    }
    p->base.svc->set_error(&p->base, "work completion error on %s: %s (vendor error 0x%x); %s "
                                     "and those in flight after it fail with EIO",
                           p->dev_name, p->v->wc_status_str(wc->status), (unsigned)wc->vendor_err,
                           before ? "the packets it covers" : "the packet");
    complete_slot(p, -EIO);
    return n + qp_reset(p, -EIO);
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
        p->last_progress_ns = now_ns(p);
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
static int progress(struct ibvp *p)
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
static int wait_progress(struct ibvp *p)
{
    for (;;) {
        for (uint64_t i = 0; i < p->max_poll; i++) {
            int n_wc, n = poll_once(p, &n_wc);
            if (n != 0 || p->n_inflight == 0)
                return n;
        }
        uint64_t now = now_ns(p), lim = stall_limit_ns(p);
        if (now - p->last_progress_ns >= lim) {
            p->base.svc->set_error(&p->base, "%s completed nothing for %.1f s with %u packets in "
                                             "flight; they fail with ETIMEDOUT and the queue pair "
                                             "is replaced",
                                   p->dev_name, (double)(now - p->last_progress_ns) / 1e9,
                                   (unsigned)p->n_inflight);
            return (int)qp_reset(p, -ETIMEDOUT);
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
            rc = errno_or(EIO);
            p->base.svc->set_error(&p->base, "waiting for completions of %s: %s", p->dev_name,
                                   strerror(-rc));
            return rc;
        }
        take_events(p);
    }
}

/* ------------------------------------------------------------ sending */

static int post_chain(struct ibvp *p)
{
    if (!p->chain_len)
        return 0;
    p->chain_last->next = NULL;
    p->chain_last->send_flags |= IBV_SEND_SIGNALED;
    struct ibv_send_wr *bad = NULL;
    int rc = p->qp ? p->v->post_send(p->qp, p->chain_first, &bad) : ENOTCONN;
    if (p->n_inflight == 0)
        p->last_progress_ns = now_ns(p);
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
    qp_reset(p, rc > 0 ? -rc : -EIO);
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
    put16(ip + 2, (uint16_t)(SPC_FRAME_IPV4_LEN + SPC_FRAME_UDP_LEN + payload));
    put16(ip + 4, id);
    put16(ip + 10, 0);
    if (!p->csum_offload)
        put16(ip + 10, p->base.svc->ipv4_checksum(ip, SPC_FRAME_IPV4_LEN));
    put16(udp + 4, (uint16_t)(SPC_FRAME_UDP_LEN + payload));
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

static int ibvp_send(struct spc_transport *t, struct spc_tx_batch *b)
{
    struct ibvp *p = spc_container_of(t, struct ibvp, base);
    if (p->dead)
        return p->dead;
    int rc = progress(p);
    if (rc < 0)
        return die(p, rc); /* no status set yet */
    for (size_t i = 0; i < b->n_packets; i++) {
        struct spc_tx_packet *pkt = spc_tx_batch_packet(b, i);
        if (pkt->size > p->max_payload) {
            pkt->status = -EMSGSIZE;
            t->svc->set_error(t, "a %zu-byte packet does not fit a frame slot (at most %zu bytes)",
                              pkt->size, p->max_payload);
            continue;
        }
        while (!p->dead && p->n_inflight + p->chain_len == p->n_slots) {
            post_chain(p);
            if (p->n_inflight && (rc = wait_progress(p)) < 0)
                die(p, rc);
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
    if (p->channel && p->n_inflight && !p->dead && (rc = progress(p)) < 0)
        die(p, rc); /* progress leaves the queue armed for get_fd */
    return 0;
}

static int ibvp_poll(struct spc_transport *t)
{
    struct ibvp *p = spc_container_of(t, struct ibvp, base);
    if (p->dead)
        return p->dead;
    int rc = progress(p);
    return rc < 0 ? die(p, rc) : rc;
}

static int ibvp_flush(struct spc_transport *t)
{
    struct ibvp *p = spc_container_of(t, struct ibvp, base);
    post_chain(p);
    while (p->n_inflight) {
        int rc = wait_progress(p);
        if (rc < 0)
            die(p, rc);
    }
    return p->dead;
}

static int ibvp_get_fd(struct spc_transport *t)
{
    struct ibvp *p = spc_container_of(t, struct ibvp, base);
    if (!p->channel)
        return -SPC_ENOTSUP; /* busy-polling (comp_vector < 0): there is nothing to wait on */
    return p->channel->fd;
}

/* ------------------------------------------------------------ registered memory */

static int ibvp_register_memory(struct spc_transport *t, void *addr, size_t len, void **handle)
{
    struct ibvp *p = spc_container_of(t, struct ibvp, base);
    if (!addr || !len || !handle || (uintptr_t)addr + len < (uintptr_t)addr)
        return -EINVAL;
    struct ibvp_region *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    errno = 0;
    r->mr = p->v->reg_mr(p->pd, addr, len, 0);
    if (!r->mr) {
        int rc = errno_or(EIO);
        t->svc->set_error(t, "registering %zu bytes at %p with %s failed: %s", len, addr,
                          p->dev_name, strerror(-rc));
        free(r);
        return rc;
    }
    r->start = (uintptr_t)addr;
    r->end = r->start + len;
    r->next = p->regions;
    p->regions = r;
    *handle = r;
    return 0;
}

static bool region_in_flight(const struct ibvp *p, const struct ibvp_region *r)
{
    for (uint32_t i = 0; i < p->n_inflight; i++) {
        const struct ibvp_slot *s = &p->slots[(p->tail + i) % p->n_slots];
        for (int k = 0; k < s->wr.num_sge; k++)
            if (s->sge[k].lkey == r->mr->lkey)
                return true;
    }
    return false;
}

static int ibvp_deregister_memory(struct spc_transport *t, void *handle)
{
    struct ibvp *p = spc_container_of(t, struct ibvp, base);
    struct ibvp_region **pp = &p->regions;
    while (*pp && *pp != handle)
        pp = &(*pp)->next;
    if (!*pp)
        return -EINVAL;
    struct ibvp_region *r = *pp;
    /* No reaping here (completions are delivered only by send, poll, flush and close):
     * the heaps using the memory must have completed already. */
    if (region_in_flight(p, r)) {
        t->svc->set_error(t, "memory at %p is still being sent by %s: deregister it after the "
                             "heaps using it have completed", (void *)r->start, p->dev_name);
        return -EBUSY;
    }
    int rc = p->v->dereg_mr(r->mr);
    if (rc != 0) {
        t->svc->set_error(t, "deregistering memory at %p from %s failed: %s", (void *)r->start,
                          p->dev_name, strerror(rc));
        return -rc;
    }
    *pp = r->next;
    if (p->mru == r)
        p->mru = NULL;
    free(r);
    return 0;
}

/* ------------------------------------------------------------ open and close */

static void release(struct ibvp *p)
{
    if (p->qp)
        p->v->destroy_qp(p->qp);
    p->qp = NULL;
    if (p->slots)
        fail_all(p, -ECANCELED);
    while (p->regions) {
        struct ibvp_region *r = p->regions;
        p->regions = r->next;
        p->v->dereg_mr(r->mr);
        free(r);
    }
    if (p->cq) {
        if (p->unacked_events)
            p->v->ack_cq_events(p->cq, p->unacked_events);
        p->v->destroy_cq(p->cq);
    }
    if (p->channel)
        p->v->destroy_comp_channel(p->channel);
    if (p->mr)
        p->v->dereg_mr(p->mr);
    if (p->buf)
        munmap(p->buf, p->buf_len);
    if (p->pd)
        p->v->dealloc_pd(p->pd);
    if (p->ctx)
        p->v->close_device(p->ctx);
    free(p->slots);
    free(p->sges);
    free(p->flows);
    p->cq = NULL;
    p->channel = NULL;
    p->mr = NULL;
    p->buf = NULL;
    p->pd = NULL;
    p->ctx = NULL;
    p->slots = NULL;
    p->sges = NULL;
    p->flows = NULL;
}

static int parse_ipv4(struct ibvp *p, const char *what, const char *host, uint8_t out[4])
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        p->base.svc->set_error(&p->base, "cannot resolve %s \"%s\" to an IPv4 address (the ibverbs "
                                         "transport sends IPv4): %s", what, host, gai_strerror(rc));
        return rc == EAI_AGAIN ? -EAGAIN : rc == EAI_MEMORY ? -ENOMEM : -SPC_ECONFIG;
    }
    memcpy(out, &((const struct sockaddr_in *)(const void *)res->ai_addr)->sin_addr, 4);
    freeaddrinfo(res);
    return 0;
}

/* Rate limits the queue pair when the stream asks for hardware pacing and the device can
 * do it, and tells the core; otherwise the core paces. Needs p->qp. Returns 0, or
 * -SPC_ENOTSUP where the device cannot pace and a core older than ABI minor 2 would not
 * pace either (it takes the hw-rate capability as a promise). */
static int setup_pacing(struct ibvp *p, const struct spc_transport_params *params,
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

static int alloc_slots(struct ibvp *p, const struct ibvp_options *o, const struct ibv_device_attr_ex *da)
{
    size_t slot_size = (HDR + p->max_payload + IBVP_SLOT_ALIGN - 1) & ~(size_t)(IBVP_SLOT_ALIGN - 1);
    uint64_t n = o->buffer_size / slot_size;
    if (n == 0)
        n = 1;
    if (da->orig_attr.max_qp_wr > 0 && n > (uint64_t)da->orig_attr.max_qp_wr)
        n = (uint64_t)da->orig_attr.max_qp_wr;
    /* The queue holds two slots' worth: completions of a replaced queue pair may linger. */
    if (da->orig_attr.max_cqe > 1 && n > (uint64_t)da->orig_attr.max_cqe / 2)
        n = (uint64_t)da->orig_attr.max_cqe / 2;
    p->n_slots = (uint32_t)n;
    p->max_chain = p->n_slots / 2 < IBVP_MAX_CHAIN ? p->n_slots / 2 : IBVP_MAX_CHAIN;
    if (p->max_chain == 0)
        p->max_chain = 1;
    size_t need = (size_t)n * slot_size;

    p->buf_len = (need + IBVP_HUGE_PAGE - 1) & ~(size_t)(IBVP_HUGE_PAGE - 1);
    p->buf = mmap(NULL, p->buf_len, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    p->buf_huge = p->buf != MAP_FAILED;
    if (!p->buf_huge) {
        long page = sysconf(_SC_PAGESIZE);
        size_t pg = page > 0 ? (size_t)page : 4096;
        p->buf_len = (need + pg - 1) / pg * pg;
        p->buf = mmap(NULL, p->buf_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p->buf == MAP_FAILED) {
            int rc = errno_or(ENOMEM);
            p->buf = NULL;
            p->base.svc->set_error(&p->base, "cannot allocate %zu bytes of packet slots: %s", need,
                                   strerror(-rc));
            return rc;
        }
    }
    errno = 0;
    p->mr = p->v->reg_mr(p->pd, p->buf, p->buf_len, IBV_ACCESS_LOCAL_WRITE);
    if (!p->mr) {
        int rc = errno_or(EIO);
        p->base.svc->set_error(&p->base, "registering %zu bytes of packet slots with %s failed: %s",
                               p->buf_len, p->dev_name, strerror(-rc));
        return rc;
    }
    p->slots = calloc(n, sizeof *p->slots);
    p->sges = calloc(n * p->max_sge, sizeof *p->sges);
    if (!p->slots || !p->sges) {
        p->base.svc->set_error(&p->base, "out of memory for %u slots", (unsigned)n);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        p->slots[i].frame = (uint8_t *)p->buf + (size_t)i * slot_size;
        p->slots[i].hdr_sub = IBVP_NO_SUB;
        p->slots[i].sge = &p->sges[(size_t)i * p->max_sge];
    }
    p->base.svc->log(&p->base, SPC_LOG_DEBUG, "%u slots of %zu bytes in %s pages on %s port %u",
                     (unsigned)n, slot_size, p->buf_huge ? "huge" : "normal", p->dev_name,
                     (unsigned)p->port);
    return 0;
}

static int open_verbs(struct ibvp *p, const struct ibvp_options *o,
                      const struct spc_transport_params *params, const uint8_t ip[4])
{
    int ifindex = 0;
    uint8_t mac[6];
    int rc = find_interface(p, ip, &ifindex, mac);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < o->endpoints.n; i++) {
        memcpy(p->flows[i].src_mac, mac, 6);
        memcpy(p->flows[i].src_ip, ip, 4);
    }
    struct ibv_device_attr_ex da;
    if ((rc = find_device(p, ip, ifindex, &da)) < 0)
        return rc;

    p->max_sge = da.orig_attr.max_sge > 0 ? (uint32_t)da.orig_attr.max_sge : 1;
    if (p->max_sge > IBVP_MAX_SGE)
        p->max_sge = IBVP_MAX_SGE;
    p->csum_offload = (da.orig_attr.device_cap_flags & IBV_DEVICE_RAW_IP_CSUM) != 0;
    if (p->csum_offload)
        for (size_t i = 0; i < o->endpoints.n; i++)
            p->flows[i].flags |= SPC_FRAME_NO_IP_CHECKSUM;

    errno = 0;
    if (!(p->pd = p->v->alloc_pd(p->ctx))) {
        rc = errno_or(EIO);
        p->base.svc->set_error(&p->base, "allocating a protection domain on %s failed: %s",
                               p->dev_name, strerror(-rc));
        return rc;
    }
    if ((rc = alloc_slots(p, o, &da)) < 0)
        return rc;
    int vector = 0;
    if (!p->busy_poll) {
        errno = 0;
        if (!(p->channel = p->v->create_comp_channel(p->ctx))) {
            rc = errno_or(EIO);
            p->base.svc->set_error(&p->base, "creating a completion channel on %s failed: %s",
                                   p->dev_name, strerror(-rc));
            return rc;
        }
        int fl = fcntl(p->channel->fd, F_GETFL);
        if (fl < 0 || fcntl(p->channel->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            rc = errno_or(EIO);
            p->base.svc->set_error(&p->base, "making the completion channel non-blocking: %s",
                                   strerror(-rc));
            return rc;
        }
        int nv = p->ctx->num_comp_vectors;
        vector = nv > 0 ? (int)(o->comp_vector % nv) : 0;
    }
    errno = 0;
    p->cq = p->v->create_cq(p->ctx, (int)(2 * p->n_slots), NULL, p->channel, vector);
    if (!p->cq) {
        rc = errno_or(EIO);
        p->base.svc->set_error(&p->base, "creating a completion queue of %u entries on %s failed: %s",
                               (unsigned)p->n_slots, p->dev_name, strerror(-rc));
        return rc;
    }
    if ((rc = qp_create(p)) < 0)
        return rc;
    return setup_pacing(p, params, &da);
}

static int ibvp_open(struct spc_transport *t, const void *options,
                     const struct spc_transport_params *params)
{
    struct ibvp *p = spc_container_of(t, struct ibvp, base);
    const struct ibvp_options *o = options;
    p->v = ibvp_verbs_table;
    if (!p->v) {
        t->svc->set_error(t, "no verbs table (a test build that did not set one)");
        return -SPC_ENOTSUP;
    }
    if (!SPC_HAS_FIELD(t->svc, struct spc_core_services, ipv4_checksum)) {
        t->svc->set_error(t, "the core (transport ABI minor %u) cannot build frames: minor 1 or "
                             "later is needed", (unsigned)t->svc->abi_minor);
        return -SPC_ENOTSUP;
    }
    if (o->endpoints.n == 0) {
        t->svc->set_error(t, "endpoints is empty: give one multicast group per substream");
        return -SPC_ECONFIG;
    }
    size_t mps = params->max_packet_size;
    p->max_payload = mps < SPC_FRAME_MAX_PAYLOAD ? mps : SPC_FRAME_MAX_PAYLOAD;
    p->max_poll = o->max_poll ? o->max_poll : 1;
    p->busy_poll = o->comp_vector < 0;

    uint8_t ip[4];
    int rc = parse_ipv4(p, "interface_address", o->interface_address, ip);
    if (rc < 0)
        return rc;
    inet_ntop(AF_INET, ip, p->addr_text, sizeof p->addr_text);
    if (!(p->flows = calloc(o->endpoints.n, sizeof *p->flows))) {
        t->svc->set_error(t, "out of memory for %zu endpoints", o->endpoints.n);
        return -ENOMEM;
    }
    for (size_t i = 0; i < o->endpoints.n; i++) {
        const struct spc_endpoint *ep = o->endpoints.items[i];
        struct spc_frame_params *f = &p->flows[i];
        char what[32];
        snprintf(what, sizeof what, "endpoints[%zu]", i);
        if ((rc = parse_ipv4(p, what, ep->host, f->dst_ip)) < 0)
            goto fail;
        if (t->svc->frame_multicast_mac(f->dst_ip, f->dst_mac) < 0) {
            char text[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, f->dst_ip, text, sizeof text);
            t->svc->set_error(t, "%s: %s is not an IPv4 multicast group; the ibverbs transport "
                                 "sends only to multicast groups (unicast would need neighbour "
                                 "resolution, which it does not do): use the udp transport",
                              what, text);
            rc = -SPC_ECONFIG;
            goto fail;
        }
        f->struct_size = sizeof *f;
        f->src_port = (uint16_t)ep->port;
        f->dst_port = (uint16_t)ep->port;
        f->ttl = (uint8_t)o->ttl;
        uint8_t probe[HDR];
        if ((rc = t->svc->frame_write(f, 0, 0, probe)) < 0) {
            t->svc->set_error(t, "the core cannot build frames for %s: %s", what,
                              t->svc->strerror(rc));
            goto fail;
        }
    }
    if ((rc = open_verbs(p, o, params, ip)) < 0)
        goto fail;
    t->n_substreams = (uint32_t)o->endpoints.n;
    return 0;
fail:
    release(p);
    return rc;
}

static void ibvp_close(struct spc_transport *t)
{
    release(spc_container_of(t, struct ibvp, base));
}

static const struct spc_transport_ops ibvp_ops = {
    SPC_TRANSPORT_OPS_INIT,
    .open = ibvp_open,
    .close = ibvp_close,
    .send = ibvp_send,
    .flush = ibvp_flush,
    .poll = ibvp_poll,
    .get_fd = ibvp_get_fd,
    .register_memory = ibvp_register_memory,
    .deregister_memory = ibvp_deregister_memory,
};

static const struct spc_transport_descriptor ibvp_descriptor = {
    SPC_TRANSPORT_DESCRIPTOR_INIT,
    .name = "ibverbs",
    .version = "1.0.0",
    .description = "raw Ethernet/IPv4/UDP multicast frames through an RDMA NIC's raw packet "
                   "queue pair (kernel bypass)",
    .caps = SPC_TRANSPORT_CAP_ASYNC | SPC_TRANSPORT_CAP_MEMREG | SPC_TRANSPORT_CAP_HW_RATE,
    .options = ibvp_option_table,
    .n_options = sizeof ibvp_option_table / sizeof ibvp_option_table[0],
    .options_size = sizeof(struct ibvp_options),
    .object_size = sizeof(struct ibvp),
    .max_substreams = 0,
    .ops = &ibvp_ops,
};

SPC_TRANSPORT_DEFINE(ibvp_descriptor)
