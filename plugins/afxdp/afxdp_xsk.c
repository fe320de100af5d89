/* The afxdp transport's AF_XDP socket: a UMEM over the plugin's frame area and a
 * socket bound to one interface queue with a TX ring only. libxdp would load and attach
 * its default XDP redirect program to the interface's RX path; the socket is created
 * with XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD so nothing is attached and traffic the
 * interface receives keeps going to the kernel stack. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/if_xdp.h>
#include <xdp/libxdp.h>

#include "afxdp_xsk.h"

#ifndef XDP_USE_SG
#define XDP_USE_SG (1 << 4) /* Linux 6.6 uapi; older headers lack it */
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#define AFX_FILL_SIZE 64u   /* smallest sensible; nothing is ever received */
/* The kernel frees a closed socket's hold on its queue after an RCU grace period and a
 * work item, so binding right after a close (a restarted sender, a renewed socket) may
 * see EBUSY for a moment: binding is retried for this long. */
#define AFX_BUSY_RETRY_MS 2000
#define AFX_BUSY_STEP_MS 20

/* libxdp prints warnings to stderr by default; plugins never write there. Its print
 * hook is process-wide, so it is set once; the errors it would print are reported
 * through the transport's error text instead. */
static int afx_libxdp_quiet(enum libxdp_print_level level, const char *fmt, va_list ap)
{
    (void)level, (void)fmt, (void)ap;
    return 0;
}
static void afx_libxdp_init(void)
{
    libxdp_set_print(afx_libxdp_quiet);
}

static const char *mode_name(uint16_t bind_flags)
{
    return bind_flags & XDP_ZEROCOPY ? "zero-copy" : "copy";
}

/* Turns a failure of socket or UMEM creation into the error text the issue asks for. */
static int explain(struct spc_transport *t, const struct afx_xsk_config *c, uint16_t bind,
                   const char *step, int rc)
{
    const char *ifn = c->ifname;
    switch (-rc) {
    case EPERM:
    case EACCES:
        t->svc->set_error(t, "%s: no permission to open an AF_XDP socket (needs CAP_NET_RAW, "
                          "and CAP_IPC_LOCK or a large enough RLIMIT_MEMLOCK for the UMEM): %s",
                          step, strerror(-rc));
        return rc;
    case ENOBUFS:
        t->svc->set_error(t, "%s: the UMEM of %llu bytes exceeds the locked-memory limit "
                          "(RLIMIT_MEMLOCK; or grant CAP_IPC_LOCK, or lower frame_count)",
                          step, (unsigned long long)c->frame_count * c->frame_size);
        return rc;
    case EAFNOSUPPORT:
        t->svc->set_error(t, "%s: this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS)", step);
        return rc;
    case EOPNOTSUPP:
    case EPROTONOSUPPORT:
        if (c->multi_buffer)
            t->svc->set_error(t, "%s on %s: %s mode refused with multi-buffer frames "
                              "(XDP_USE_SG, Linux 6.6+ and driver support): %s; use a "
                              "frame_size of at least max_packet_size + 42",
                              step, ifn, mode_name(bind), strerror(-rc));
        else
            t->svc->set_error(t, "%s on %s: %s mode not supported by the driver: %s", step, ifn,
                              mode_name(bind), strerror(-rc));
        return -EOPNOTSUPP;
    case EBUSY:
        t->svc->set_error(t, "%s: %s queue %u is in use by another AF_XDP socket (still after "
                          "%d ms)", step, ifn, (unsigned)c->queue_id, AFX_BUSY_RETRY_MS);
        return rc;
    case EINVAL:
        if (c->n_queues && c->queue_id >= c->n_queues)
            break;
        t->svc->set_error(t, "%s on %s queue %u refused (%s): the queue may not exist, the "
                          "frame_size %u may be unsupported (a power of two from 2048 to the "
                          "page size), or the kernel lacks multi-buffer AF_XDP (needed: %s)",
                          step, ifn, (unsigned)c->queue_id, strerror(-rc),
                          (unsigned)c->frame_size, c->multi_buffer ? "yes" : "no");
        return rc;
    default:
        t->svc->set_error(t, "%s on %s queue %u (%s mode): %s", step, ifn, (unsigned)c->queue_id,
                          mode_name(bind), strerror(-rc));
        return rc;
    }
    t->svc->set_error(t, "queue_id %u out of range: %s has %u queues", (unsigned)c->queue_id,
                      ifn, (unsigned)c->n_queues);
    return -EINVAL;
}

/* One attempt with the given bind flags; on failure nothing is left behind. */
static int create_once(struct spc_transport *t, const struct afx_xsk_config *c, uint16_t bind,
                       struct afx_xsk *x)
{
    memset(x, 0, sizeof *x);
    x->fd = -1;
    const struct xsk_umem_config ucfg = {
        .fill_size = AFX_FILL_SIZE,
        .comp_size = c->frame_count,
        .frame_size = c->frame_size,
        .frame_headroom = 0,
        .flags = 0,
    };
    int rc = xsk_umem__create(&x->umem, c->area, (uint64_t)c->frame_count * c->frame_size,
                              &x->fill, &x->comp, &ucfg);
    if (rc) {
        x->umem = NULL;
        return explain(t, c, bind, "creating the UMEM", rc < 0 ? rc : -rc);
    }
    const struct xsk_socket_config scfg = {
        .rx_size = 0,
        .tx_size = c->frame_count,
        .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
        .xdp_flags = 0,
        .bind_flags = bind,
    };
    for (int waited = 0;; waited += AFX_BUSY_STEP_MS) {
        rc = xsk_socket__create(&x->xsk, c->ifname, c->queue_id, x->umem, NULL, &x->tx, &scfg);
        if (rc != -EBUSY || waited >= AFX_BUSY_RETRY_MS)
            break;
        const struct timespec step = {0, AFX_BUSY_STEP_MS * 1000000L};
        nanosleep(&step, NULL);
    }
    if (rc) {
        x->xsk = NULL;
        afx_xsk_destroy(x);
        return explain(t, c, bind, "binding the AF_XDP socket", rc < 0 ? rc : -rc);
    }
    x->fd = xsk_socket__fd(x->xsk);
    struct xdp_options opts = {0};
    socklen_t len = sizeof opts;
    if (getsockopt(x->fd, SOL_XDP, XDP_OPTIONS, &opts, &len) == 0)
        x->zerocopy = (opts.flags & XDP_OPTIONS_ZEROCOPY) != 0;
    return 0;
}

int afx_xsk_create(struct spc_transport *t, const struct afx_xsk_config *c, struct afx_xsk *x)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, afx_libxdp_init);
    uint16_t common = (uint16_t)((c->need_wakeup ? XDP_USE_NEED_WAKEUP : 0) |
                                 (c->multi_buffer ? XDP_USE_SG : 0));
    if (c->mode == AFX_MODE_COPY)
        return create_once(t, c, common | XDP_COPY, x);
    int rc = create_once(t, c, common | XDP_ZEROCOPY, x);
    if (c->mode == AFX_MODE_ZEROCOPY || rc != -EOPNOTSUPP)
        return rc;
    t->svc->log(t, SPC_LOG_INFO, "%s queue %u: no zero-copy AF_XDP, using copy mode",
                c->ifname, (unsigned)c->queue_id);
    return create_once(t, c, common | XDP_COPY, x);
}

void afx_xsk_destroy(struct afx_xsk *x)
{
    if (x->xsk)
        xsk_socket__delete(x->xsk);
    x->xsk = NULL;
    if (x->umem)
        xsk_umem__delete(x->umem);
    x->umem = NULL;
    x->fd = -1;
}
