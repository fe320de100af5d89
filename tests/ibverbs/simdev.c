/* The simulated RDMA NIC (simdev.h): the host, devices, verbs objects and the API of
 * simdev.h; the data path is in simdev_datapath.c. */
#include "simdev_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

struct sim_state sim;

uint64_t simdev_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void enter_error(struct sim_qp *q, uint64_t now)
{
    if (q->qp.state != IBV_QPS_ERR)
        q->err_ns = now;
    q->qp.state = IBV_QPS_ERR;
}

void free_qp(struct sim_qp *q)
{
    free(q->q);
    free(q);
}

void violation(const char *fmt, ...)
{
    if (!sim.st.violations++) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sim.st.first_violation, sizeof sim.st.first_violation, fmt, ap);
        va_end(ap);
    }
}

void simdev_default_config(struct simdev_config *c)
{
    *c = (struct simdev_config){
        .dev_name = "sim_mlx5_0",
        .ifname = "simeth0",
        .ip = {10, 8, 0, 2},
        .mac = {0x02, 0x5e, 0, 0, 0, 0x02},
        .ifindex = 7,
        .max_sge = 30,
        .max_qp_wr = 32768,
        .max_cqe = 4194303,
        .mtu = 1500,
        .num_comp_vectors = 4,
        .max_frame = 9014,
    };
}

void simdev_clear_frames(void)
{
    for (size_t i = 0; i < sim.n_frames; i++)
        free(sim.frames[i].data);
    sim.n_frames = 0;
}

void simdev_uninstall(void)
{
    if (!sim.installed)
        return;
    while (sim.orphans) {
        struct sim_qp *q = sim.orphans;
        sim.orphans = q->next;
        free_qp(q);
    }
    simdev_clear_frames();
    free(sim.frames);
    memset(&sim, 0, sizeof sim);
}

void simdev_install(const struct simdev_config *c)
{
    simdev_uninstall();
    sim.installed = true;
    sim.cfg = *c;
    sim.fail_seq = UINT64_MAX;
    sim.post_fail_seq = UINT64_MAX;
    sim.next_key = 0x1000;
    sim.next_qpn = 0x100;
    sim.st.cq_vector = -1;
    if (c->no_devices)
        return;
    if (c->extra_device) {
        snprintf(sim.devs[sim.n_devs].name, sizeof sim.devs[0].name, "sim_other0");
        sim.list[sim.n_devs] = &sim.devs[sim.n_devs];
        sim.n_devs++;
    }
    sim.owner = sim.n_devs;
    snprintf(sim.devs[sim.n_devs].name, sizeof sim.devs[0].name, "%s", c->dev_name);
    sim.list[sim.n_devs] = &sim.devs[sim.n_devs];
    sim.n_devs++;
    sim.list[sim.n_devs] = NULL;
}

void simdev_fail_wr(uint64_t seq, enum ibv_wc_status status)
{
    sim.fail_seq = seq;
    sim.fail_status = status;
}

void simdev_fail_post(uint64_t seq, int err)
{
    sim.post_fail_seq = seq;
    sim.post_fail_err = err;
}

void simdev_set_delay_ns(uint64_t ns)
{
    sim.delay_ns = ns;
}

void simdev_set_stall(bool on)
{
    sim.stall = on;
}

void simdev_qp_error(void)
{
    for (struct sim_qp *q = sim.qps; q; q = q->next)
        enter_error(q, simdev_now_ns());
}

void simdev_set_poll_fails(bool on)
{
    sim.poll_fails = on;
}

void simdev_set_rate_limit_errno(int err)
{
    sim.cfg.rate_limit_errno = err;
}

void simdev_set_flush_delay_ns(uint64_t ns)
{
    sim.flush_delay_ns = ns;
}

const struct simdev_stats *simdev_stats(void)
{
    return &sim.st;
}

size_t simdev_n_frames(void)
{
    return sim.n_frames;
}

const struct simdev_frame *simdev_frame(size_t i)
{
    return i < sim.n_frames ? &sim.frames[i] : NULL;
}

int simdev_live_objects(void)
{
    return sim.live;
}

size_t simdev_pending(void)
{
    size_t n = 0;
    for (struct sim_qp *q = sim.qps; q; q = q->next)
        n += q->len;
    return n;
}

/* ---------------------------------------------------------------- host */

struct sim_ifa {
    struct ifaddrs ifa;
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_ll ll;
    } addr;
    char name[IF_NAMESIZE];
};

static int sim_getifaddrs(struct ifaddrs **out)
{
    enum { N = 6 };
    struct sim_ifa *a = calloc(N, sizeof *a);
    if (!a) {
        errno = ENOMEM;
        return -1;
    }
    /* Pairs of (link, IPv4) entries: lo, the interface, its VLAN device. */
    const int index[3] = {1, sim.cfg.ifindex, SIMDEV_VLAN_IFINDEX};
    uint8_t ip[3][4] = {{127, 0, 0, 1}, {0}, {0}};
    memcpy(ip[1], sim.cfg.ip, 4);
    inet_pton(AF_INET, SIMDEV_VLAN_ADDRESS, ip[2]);
    for (int i = 0; i < N; i++) {
        int d = i / 2;
        if (d == 0)
            snprintf(a[i].name, sizeof a[i].name, "lo");
        else
            snprintf(a[i].name, sizeof a[i].name, d == 1 ? "%s" : "%s.100", sim.cfg.ifname);
        a[i].ifa.ifa_name = a[i].name;
        a[i].ifa.ifa_addr = &a[i].addr.sa;
        a[i].ifa.ifa_flags = IFF_UP;
        a[i].ifa.ifa_next = i < N - 1 ? &a[i + 1].ifa : NULL;
        if (i % 2 == 0) {
            a[i].addr.ll.sll_family = AF_PACKET;
            a[i].addr.ll.sll_ifindex = index[d];
            a[i].addr.ll.sll_halen = 6;
            if (d > 0)
                memcpy(a[i].addr.ll.sll_addr, sim.cfg.mac, 6);
        } else {
            a[i].addr.in.sin_family = AF_INET;
            memcpy(&a[i].addr.in.sin_addr, ip[d], 4);
        }
    }
    *out = &a[0].ifa;
    return 0;
}

static void sim_freeifaddrs(struct ifaddrs *ifa)
{
    free(ifa); /* the first node starts the one block */
}

/* 0: lo, 1: the interface, 2: its VLAN device, -1: none. */
static int sim_if_of(const char *name)
{
    char vlan[IF_NAMESIZE + 8];
    snprintf(vlan, sizeof vlan, "%s.100", sim.cfg.ifname);
    return !strcmp(name, "lo") ? 0 : !strcmp(name, sim.cfg.ifname) ? 1 : !strcmp(name, vlan) ? 2 : -1;
}

static int sim_if_mtu(const char *name)
{
    int d = sim_if_of(name);
    if (sim.cfg.if_mtu_errno)
        return -sim.cfg.if_mtu_errno;
    return d < 0 ? -ENODEV : d == 0 ? 65536 : sim.cfg.mtu;
}

static int sim_if_vlan(const char *name, uint16_t *vid)
{
    int d = sim_if_of(name);
    if (sim.cfg.if_vlan_errno)
        return -sim.cfg.if_vlan_errno;
    if (d < 0)
        return -ENODEV;
    if (d == 2)
        *vid = SIMDEV_VLAN_ID;
    return d == 2;
}

/* ---------------------------------------------------------------- devices */

static struct ibv_device **sim_get_device_list(int *n)
{
    if (sim.cfg.list_fails) {
        errno = ENOSYS;
        return NULL;
    }
    struct ibv_device **l = calloc((size_t)sim.n_devs + 1, sizeof *l);
    if (!l)
        return NULL;
    memcpy(l, sim.list, (size_t)sim.n_devs * sizeof *l);
    if (n)
        *n = sim.n_devs;
    return l;
}

static void sim_free_device_list(struct ibv_device **l)
{
    free(l);
}

static const char *sim_get_device_name(struct ibv_device *d)
{
    return d->name;
}

static struct sim_ctx *ctx_of(struct ibv_context *c)
{
    return (struct sim_ctx *)(void *)c;
}

static struct ibv_context *sim_open_device(struct ibv_device *d)
{
    struct sim_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ctx.device = d;
    c->ctx.num_comp_vectors = sim.cfg.num_comp_vectors;
    c->ctx.cmd_fd = -1;
    c->ctx.async_fd = -1;
    c->dev = (int)(d - sim.devs);
    sim.live++;
    return &c->ctx;
}

static int sim_close_device(struct ibv_context *c)
{
    free(ctx_of(c));
    sim.live--;
    return 0;
}

static int sim_query_device_ex(struct ibv_context *c, struct ibv_device_attr_ex *a)
{
    (void)c;
    memset(a, 0, sizeof *a);
    a->orig_attr.phys_port_cnt = 1;
    a->orig_attr.max_sge = (int)sim.cfg.max_sge;
    a->orig_attr.max_qp_wr = (int)sim.cfg.max_qp_wr;
    a->orig_attr.max_cqe = sim.cfg.max_cqe;
    a->orig_attr.max_qp = 1024;
    if (sim.cfg.raw_ip_csum)
        a->orig_attr.device_cap_flags |= IBV_DEVICE_RAW_IP_CSUM;
    a->packet_pacing_caps.qp_rate_limit_min = sim.cfg.pacing_min_kbps;
    a->packet_pacing_caps.qp_rate_limit_max = sim.cfg.pacing_max_kbps;
    if (sim.cfg.pacing_raw_qp)
        a->packet_pacing_caps.supported_qpts = 1u << IBV_QPT_RAW_PACKET;
    return 0;
}

static int sim_query_port(struct ibv_context *c, uint8_t port, struct ibv_port_attr *a)
{
    (void)c;
    if (port != 1)
        return EINVAL;
    memset(a, 0, sizeof *a);
    a->state = IBV_PORT_ACTIVE;
    a->gid_tbl_len = 4;
    a->link_layer = sim.cfg.infiniband_port ? IBV_LINK_LAYER_INFINIBAND : IBV_LINK_LAYER_ETHERNET;
    return 0;
}

static int sim_query_gid_ex(struct ibv_context *c, uint32_t port, uint32_t index,
                            struct ibv_gid_entry *e)
{
    if (port != 1 || index >= 4)
        return EINVAL;
    bool owner = ctx_of(c)->dev == sim.owner;
    if (index >= 2 && !owner)
        return ENODATA;
    memset(e, 0, sizeof *e);
    e->gid_index = index;
    e->port_num = port;
    e->gid_type = IBV_GID_TYPE_ROCE_V2;
    /* The other device: a link-local GID on another interface, and another address.
     * The owner: entries 0 and 1 on the interface, 2 and 3 on its VLAN device. */
    uint8_t ip[4] = {192, 0, 2, 99};
    if (owner && index < 2)
        memcpy(ip, sim.cfg.ip, 4);
    else if (owner)
        inet_pton(AF_INET, SIMDEV_VLAN_ADDRESS, ip);
    if (index % 2 == 0) {
        e->gid.raw[0] = 0xfe;
        e->gid.raw[1] = 0x80;
        memcpy(&e->gid.raw[10], owner ? sim.cfg.mac : (const uint8_t[6]){2, 0, 0, 0, 0, 99}, 6);
    } else {
        e->gid.raw[10] = e->gid.raw[11] = 0xff;
        memcpy(&e->gid.raw[12], ip, 4);
    }
    uint32_t ndev = index < 2 ? (uint32_t)sim.cfg.ifindex : SIMDEV_VLAN_IFINDEX;
    e->ndev_ifindex = owner ? (sim.cfg.match_by_gid ? 0 : ndev) : 99;
    return 0;
}

static const char *sim_wc_status_str(enum ibv_wc_status s)
{
    switch (s) {
    case IBV_WC_SUCCESS: return "success";
    case IBV_WC_LOC_LEN_ERR: return "local length error";
    case IBV_WC_LOC_PROT_ERR: return "local protection error";
    case IBV_WC_WR_FLUSH_ERR: return "Work Request Flushed Error";
    case IBV_WC_GENERAL_ERR: return "general error";
    default: return "other error";
    }
}

/* ---------------------------------------------------------------- objects */

static struct ibv_pd *sim_alloc_pd(struct ibv_context *c)
{
    struct ibv_pd *pd = calloc(1, sizeof *pd);
    if (!pd)
        return NULL;
    pd->context = c;
    sim.live++;
    return pd;
}

static int sim_dealloc_pd(struct ibv_pd *pd)
{
    for (struct sim_mr *m = sim.mrs; m; m = m->next)
        if (m->mr.pd == pd) {
            violation("dealloc_pd with a memory region still registered");
            return EBUSY;
        }
    for (struct sim_qp *q = sim.qps; q; q = q->next)
        if (q->qp.pd == pd) {
            violation("dealloc_pd with a queue pair still open");
            return EBUSY;
        }
    free(pd);
    sim.live--;
    return 0;
}

static struct ibv_mr *sim_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t len,
                                      uint64_t iova, unsigned int access)
{
    sim.st.last_mr_access = access;
    if (access & IBV_ACCESS_RELAXED_ORDERING)
        sim.st.mrs_relaxed++;
    if (!addr || !len) {
        errno = EINVAL;
        return NULL;
    }
    struct sim_mr *m = calloc(1, sizeof *m);
    if (!m) {
        errno = ENOMEM;
        return NULL;
    }
    m->mr.context = pd->context;
    m->mr.pd = pd;
    m->mr.addr = addr;
    m->mr.length = len;
    m->iova = iova;
    m->mr.lkey = sim.next_key;
    m->mr.rkey = sim.next_key;
    sim.next_key += 0x101;
    m->next = sim.mrs;
    sim.mrs = m;
    sim.live++;
    sim.st.mrs_registered++;
    return &m->mr;
}

static int sim_dereg_mr(struct ibv_mr *mr)
{
    for (struct sim_mr **pp = &sim.mrs; *pp; pp = &(*pp)->next) {
        if (&(*pp)->mr == mr) {
            struct sim_mr *m = *pp;
            *pp = m->next;
            free(m);
            sim.live--;
            return 0;
        }
    }
    violation("dereg_mr of an unknown region");
    return EINVAL;
}

static struct ibv_comp_channel *sim_create_comp_channel(struct ibv_context *c)
{
    struct ibv_comp_channel *ch = calloc(1, sizeof *ch);
    if (!ch)
        return NULL;
    ch->context = c;
    ch->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (ch->fd < 0) {
        free(ch);
        return NULL;
    }
    sim.live++;
    return ch;
}

static int sim_destroy_comp_channel(struct ibv_comp_channel *ch)
{
    for (struct sim_cq *q = sim.cqs; q; q = q->next)
        if (q->cq.channel == ch) {
            violation("destroy_comp_channel while a completion queue uses it");
            return EBUSY;
        }
    close(ch->fd);
    free(ch);
    sim.live--;
    return 0;
}

static struct ibv_cq *sim_create_cq(struct ibv_context *c, int cqe, void *cq_context,
                                    struct ibv_comp_channel *ch, int vector)
{
    if (cqe < 1 || cqe > sim.cfg.max_cqe || vector < 0 || vector >= c->num_comp_vectors) {
        violation("create_cq: %d entries, vector %d", cqe, vector);
        errno = EINVAL;
        return NULL;
    }
    struct sim_cq *q = calloc(1, sizeof *q);
    if (!q || !(q->wc = calloc((size_t)cqe, sizeof *q->wc))) {
        free(q);
        errno = ENOMEM;
        return NULL;
    }
    q->cq.context = c;
    q->cq.channel = ch;
    q->cq.cq_context = cq_context;
    q->cq.cqe = cqe;
    sim.st.cq_vector = vector;
    sim.st.cq_channel = ch != NULL;
    sim.st.cq_size = cqe;
    q->next = sim.cqs;
    sim.cqs = q;
    sim.live++;
    return &q->cq;
}

static int sim_destroy_cq(struct ibv_cq *cq)
{
    struct sim_cq *q = cq_of(cq);
    for (struct sim_qp *p = sim.qps; p; p = p->next)
        if (p->qp.send_cq == cq) {
            violation("destroy_cq while a queue pair uses it");
            return EBUSY;
        }
    if (q->unacked) {
        violation("destroy_cq with %u completion events not acknowledged", q->unacked);
        return EBUSY;
    }
    for (struct sim_cq **pp = &sim.cqs; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    for (struct sim_qp **pp = &sim.orphans; *pp;) {
        struct sim_qp *o = *pp;
        if (o->qp.send_cq == cq) {
            *pp = o->next;
            free_qp(o);
        } else {
            pp = &o->next;
        }
    }
    free(q->wc);
    free(q);
    sim.live--;
    return 0;
}

static struct ibv_qp *sim_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *a)
{
    if (sim.cfg.create_qp_errno) {
        errno = sim.cfg.create_qp_errno;
        return NULL;
    }
    if (a->qp_type != IBV_QPT_RAW_PACKET || !a->send_cq || !a->recv_cq ||
        a->cap.max_send_sge > SIM_MAX_SGE || a->cap.max_send_sge < 1 || a->cap.max_send_wr < 1) {
        violation("create_qp: type %d, %u SGEs, %u requests", (int)a->qp_type,
                  a->cap.max_send_sge, a->cap.max_send_wr);
        errno = EINVAL;
        return NULL;
    }
    sim.st.qp_max_sge = a->cap.max_send_sge;
    sim.st.qp_max_wr = a->cap.max_send_wr;
    sim.st.qp_max_recv_wr = a->cap.max_recv_wr;
    /* mlx5: the queue is sized in 64-byte blocks, a power of two of bytes in all. */
    uint64_t wqe = (SIM_WQE_BASE + SIM_WQE_PER_SGE * a->cap.max_send_sge + SIM_WQEBB - 1) /
                   SIM_WQEBB * SIM_WQEBB;
    uint64_t bytes = 1;
    while (bytes < (uint64_t)a->cap.max_send_wr * wqe)
        bytes <<= 1;
    uint32_t limit = sim.cfg.sq_wqebb_limit ? sim.cfg.sq_wqebb_limit : sim.cfg.max_qp_wr;
    if (a->cap.max_send_sge > sim.cfg.max_sge || bytes / SIM_WQEBB > limit) {
        sim.st.qps_refused++;
        errno = EINVAL;
        return NULL;
    }
    uint32_t granted = (uint32_t)(bytes / wqe);
    a->cap.max_send_wr = granted;
    struct sim_qp *q = calloc(1, sizeof *q);
    if (!q || !(q->q = calloc(granted, sizeof *q->q))) {
        free(q);
        errno = ENOMEM;
        return NULL;
    }
    q->qp.context = pd->context;
    q->qp.pd = pd;
    q->qp.send_cq = a->send_cq;
    q->qp.recv_cq = a->recv_cq;
    q->qp.qp_num = sim.next_qpn++;
    q->qp.state = IBV_QPS_RESET;
    q->qp.qp_type = IBV_QPT_RAW_PACKET;
    q->max_wr = granted;
    q->max_sge = a->cap.max_send_sge;
    q->next = sim.qps;
    sim.qps = q;
    sim.live++;
    sim.st.qps_created++;
    sim.st.qp_granted_wr = granted;
    return &q->qp;
}

static int sim_destroy_qp(struct ibv_qp *qp)
{
    for (struct sim_qp **pp = &sim.qps; *pp; pp = &(*pp)->next) {
        if (&(*pp)->qp == qp) {
            struct sim_qp *q = *pp;
            *pp = q->next;
            sim.live--;
            if (q->len && sim.flush_delay_ns) {
                /* A device that finishes flushing after the queue pair is gone. */
                enter_error(q, simdev_now_ns());
                q->next = sim.orphans;
                sim.orphans = q;
                return 0;
            }
            /* Requests not yet executed are dropped; completions already queued stay. */
            free_qp(q);
            return 0;
        }
    }
    violation("destroy_qp of an unknown queue pair");
    return EINVAL;
}

static int sim_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *a, int mask)
{
    struct sim_qp *q = qp_of(qp);
    if (!(mask & IBV_QP_STATE)) {
        violation("modify_qp without IBV_QP_STATE");
        return EINVAL;
    }
    enum ibv_qp_state from = qp->state, to = a->qp_state;
    bool ok = to == IBV_QPS_ERR || to == IBV_QPS_RESET ||
              (from == IBV_QPS_RESET && to == IBV_QPS_INIT) ||
              (from == IBV_QPS_INIT && to == IBV_QPS_RTR) ||
              (from == IBV_QPS_RTR && to == IBV_QPS_RTS);
    if (ok && to == IBV_QPS_INIT && (!(mask & IBV_QP_PORT) || a->port_num != 1))
        ok = false;
    if (!ok) {
        violation("modify_qp from state %d to %d (mask 0x%x, port %u)", (int)from, (int)to, mask,
                  (unsigned)a->port_num);
        return EINVAL;
    }
    if (to == IBV_QPS_RESET) {
        q->len = 0;
        q->busy = q->uncovered = 0;
        q->csum_ok = false;
    }
    if (to == IBV_QPS_INIT)
        q->csum_ok = sim.cfg.raw_ip_csum; /* mlx5 caches the port's offloads here */
    if (to == IBV_QPS_ERR)
        enter_error(q, simdev_now_ns());
    qp->state = to;
    return 0;
}

static int sim_modify_qp_rate_limit(struct ibv_qp *qp, struct ibv_qp_rate_limit_attr *a)
{
    sim.st.rate_limit_calls++;
    if (!sim.cfg.pacing_max_kbps || !sim.cfg.pacing_raw_qp)
        return EOPNOTSUPP;
    if (qp->state != IBV_QPS_RTS) {
        violation("modify_qp_rate_limit in queue pair state %d (only RTS)", (int)qp->state);
        return EINVAL;
    }
    if (sim.cfg.rate_limit_errno)
        return sim.cfg.rate_limit_errno;
    if (a->rate_limit && (a->rate_limit < sim.cfg.pacing_min_kbps ||
                          a->rate_limit > sim.cfg.pacing_max_kbps))
        return EINVAL;
    if ((a->max_burst_sz && !sim.cfg.pacing_burst) || (a->typical_pkt_sz && !sim.cfg.pacing_typical))
        return EINVAL;
    sim.st.rate_limit = *a;
    sim.st.rate_limit_set++;
    return 0;
}

static const struct ibvp_verbs sim_verbs = {
    .getifaddrs = sim_getifaddrs,
    .freeifaddrs = sim_freeifaddrs,
    .if_mtu = sim_if_mtu,
    .if_vlan = sim_if_vlan,
    .get_device_list = sim_get_device_list,
    .free_device_list = sim_free_device_list,
    .get_device_name = sim_get_device_name,
    .open_device = sim_open_device,
    .close_device = sim_close_device,
    .query_device_ex = sim_query_device_ex,
    .query_port = sim_query_port,
    .query_gid_ex = sim_query_gid_ex,
    .wc_status_str = sim_wc_status_str,
    .alloc_pd = sim_alloc_pd,
    .dealloc_pd = sim_dealloc_pd,
    .reg_mr_iova2 = sim_reg_mr_iova2,
    .dereg_mr = sim_dereg_mr,
    .create_comp_channel = sim_create_comp_channel,
    .destroy_comp_channel = sim_destroy_comp_channel,
    .create_cq = sim_create_cq,
    .destroy_cq = sim_destroy_cq,
    .create_qp = sim_create_qp,
    .modify_qp = sim_modify_qp,
    .destroy_qp = sim_destroy_qp,
    .modify_qp_rate_limit = sim_modify_qp_rate_limit,
    .post_send = sim_post_send,
    .poll_cq = sim_poll_cq,
    .req_notify_cq = sim_req_notify_cq,
    .get_cq_event = sim_get_cq_event,
    .ack_cq_events = sim_ack_cq_events,
};

const struct ibvp_verbs *simdev_verbs(void)
{
    return &sim_verbs;
}
