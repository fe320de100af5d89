/* What only the built module has: the verbs table over the real libibverbs (several
 * verbs are inline functions or macros, so the table holds wrappers) and the exported
 * entry point. The simulated-device test links the other files with its own table. */
#include <ifaddrs.h>

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

const struct ibvp_verbs *ibvp_verbs_in_use(void)
{
    return &ibvp_real_verbs;
}

SPC_TRANSPORT_DEFINE(ibvp_descriptor)
