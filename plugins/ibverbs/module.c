/* What only the built module has: the verbs table over the real libibverbs (several
 * verbs are inline functions or macros, so the table holds wrappers) and the exported
 * entry point. The simulated-device test links the other files with its own table. */
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_vlan.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ibvp.h"

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
static struct ibv_mr *real_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t len,
                                        uint64_t iova, unsigned int access)
{
#ifdef IBVP_HAVE_REG_MR_IOVA2
    return ibv_reg_mr_iova2(pd, addr, len, iova, access);
#else
    (void)iova; /* always addr */
    return ibv_reg_mr(pd, addr, len, (int)(access & ~(unsigned)IBV_ACCESS_OPTIONAL_RANGE));
#endif
}

/* A socket for the interface ioctls; -errno when none can be made. */
static int if_socket(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    return fd >= 0 ? fd : -errno;
}

static int real_if_mtu(const char *ifname)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    int fd = if_socket();
    if (fd < 0)
        return fd;
    int rc = ioctl(fd, SIOCGIFMTU, &ifr) < 0 ? -errno : ifr.ifr_mtu;
    close(fd);
    return rc;
}

static int real_if_vlan(const char *ifname, uint16_t *vid)
{
    struct vlan_ioctl_args a;
    memset(&a, 0, sizeof a);
    a.cmd = GET_VLAN_VID_CMD;
    snprintf(a.device1, sizeof a.device1, "%s", ifname);
    int fd = if_socket();
    if (fd < 0)
        return fd;
    int rc = ioctl(fd, SIOCGIFVLAN, &a) < 0 ? -errno : 1;
    close(fd);
    if (rc == 1)
        *vid = (uint16_t)a.u.VID;
    /* Not a VLAN device (EINVAL), or no 802.1Q support loaded, so no VLAN devices. */
    if (rc == -EINVAL || rc == -ENOPKG || rc == -ENOTTY || rc == -EOPNOTSUPP)
        rc = 0;
    return rc;
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
    .if_mtu = real_if_mtu,
    .if_vlan = real_if_vlan,
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
    .reg_mr_iova2 = real_reg_mr_iova2,
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

const struct ibvp_verbs *ibvp_verbs_in_use(void)
{
    return &ibvp_real_verbs;
}

SPC_TRANSPORT_DEFINE(ibvp_descriptor)
