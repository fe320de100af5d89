/* Private to the afxdp transport: the AF_XDP socket and its UMEM (afxdp_xsk.c), made
 * TX-only and without any XDP program. */
#ifndef SPC_AFXDP_XSK_H
#define SPC_AFXDP_XSK_H

#include <stdbool.h>
#include <stdint.h>

#include <xdp/xsk.h>

#include "speadcast/transport.h"

enum afx_mode { AFX_MODE_AUTO, AFX_MODE_ZEROCOPY, AFX_MODE_COPY };

/* What the socket is made from; the area is the caller's (frame_count * frame_size
 * bytes, page aligned) and outlives the socket. */
struct afx_xsk_config {
    const char *ifname;
    uint32_t queue_id;
    uint32_t n_queues;     /* the driver's, 0 = unknown: only for the error text */
    void *area;
    uint32_t frame_size;   /* a power of two */
    uint32_t frame_count;  /* a power of two: also the TX and completion ring sizes */
    enum afx_mode mode;
    bool need_wakeup;
    bool multi_buffer;     /* packets span several frames (XDP_USE_SG) */
};

/* A bound socket and its UMEM; rings ready. */
struct afx_xsk {
    struct xsk_umem *umem;
    struct xsk_socket *xsk;
    struct xsk_ring_prod fill; /* unused (no RX), but every UMEM has one */
    struct xsk_ring_cons comp;
    struct xsk_ring_prod tx;
    int fd;
    bool zerocopy;             /* the kernel reports the socket zero-copy */
};

/* Creates the UMEM over cfg->area and a TX-only socket on cfg->ifname's queue, with no
 * XDP program loaded or attached. mode AUTO tries zero-copy and falls back to copy.
 * Errors (detail through svc->set_error): -EPERM (no CAP_NET_RAW), -EAFNOSUPPORT (no
 * AF_XDP in the kernel), -EINVAL (queue out of range, frame size refused), -EOPNOTSUPP
 * (zero-copy or multi-buffer not offered by the driver), other -errno. */
int afx_xsk_create(struct spc_transport *t, const struct afx_xsk_config *cfg, struct afx_xsk *x);

/* Deletes the socket and the UMEM; afterwards the kernel touches none of the area. */
void afx_xsk_destroy(struct afx_xsk *x);

#endif
