/* The one table through which the ibverbs plugin reaches libibverbs and the host's
 * interface list. The plugin module fills it with thin wrappers over the real calls
 * (several verbs are inline functions or macros in <infiniband/verbs.h>, so the table
 * holds functions, never the verbs' own addresses); the simulated-device tests
 * (tests/ibverbs/simdev.c) fill it with a device model. Nothing else in the plugin calls
 * libibverbs or getifaddrs.
 *
 * Each entry has the contract of the verb of the same name (ibv_<entry>, or getifaddrs /
 * freeifaddrs): same arguments, same return convention (pointer or NULL with errno set;
 * 0 or an errno value; poll_cq a count or negative). query_gid_ex omits the entry_size
 * argument of _ibv_query_gid_ex. reg_mr_iova2 is ibv_reg_mr_iova2 where libibverbs has it
 * (rdma-core 29+), else ibv_reg_mr without the optional access flags (iova must then
 * equal addr). Two entries ask the host about an interface by name:
 *   if_mtu   its MTU (> 0), or a negative errno;
 *   if_vlan  1 with *vid set for an 802.1Q VLAN device, 0 for any other device, or a
 *            negative errno.
 * Private to the plugin and its tests: not installed.
 */
#ifndef IBVP_VERBS_H
#define IBVP_VERBS_H

#include <ifaddrs.h>
#include <infiniband/verbs.h>
#include <stdint.h>

struct ibvp_verbs {
    int (*getifaddrs)(struct ifaddrs **ifap);
    void (*freeifaddrs)(struct ifaddrs *ifa);
    int (*if_mtu)(const char *ifname);
    int (*if_vlan)(const char *ifname, uint16_t *vid);

    struct ibv_device **(*get_device_list)(int *num_devices);
    void (*free_device_list)(struct ibv_device **list);
    const char *(*get_device_name)(struct ibv_device *device);
    struct ibv_context *(*open_device)(struct ibv_device *device);
    int (*close_device)(struct ibv_context *context);
    int (*query_device_ex)(struct ibv_context *context, struct ibv_device_attr_ex *attr);
    int (*query_port)(struct ibv_context *context, uint8_t port_num,
                      struct ibv_port_attr *port_attr);
    int (*query_gid_ex)(struct ibv_context *context, uint32_t port_num, uint32_t gid_index,
                        struct ibv_gid_entry *entry);
    const char *(*wc_status_str)(enum ibv_wc_status status);

    struct ibv_pd *(*alloc_pd)(struct ibv_context *context);
    int (*dealloc_pd)(struct ibv_pd *pd);
    struct ibv_mr *(*reg_mr_iova2)(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
                                   unsigned int access);
    int (*dereg_mr)(struct ibv_mr *mr);
    struct ibv_comp_channel *(*create_comp_channel)(struct ibv_context *context);
    int (*destroy_comp_channel)(struct ibv_comp_channel *channel);
    struct ibv_cq *(*create_cq)(struct ibv_context *context, int cqe, void *cq_context,
                                struct ibv_comp_channel *channel, int comp_vector);
    int (*destroy_cq)(struct ibv_cq *cq);
    struct ibv_qp *(*create_qp)(struct ibv_pd *pd, struct ibv_qp_init_attr *attr);
    int (*modify_qp)(struct ibv_qp *qp, struct ibv_qp_attr *attr, int attr_mask);
    int (*destroy_qp)(struct ibv_qp *qp);
    int (*modify_qp_rate_limit)(struct ibv_qp *qp, struct ibv_qp_rate_limit_attr *attr);

    int (*post_send)(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad_wr);
    int (*poll_cq)(struct ibv_cq *cq, int num_entries, struct ibv_wc *wc);
    int (*req_notify_cq)(struct ibv_cq *cq, int solicited_only);
    int (*get_cq_event)(struct ibv_comp_channel *channel, struct ibv_cq **cq,
                        void **cq_context);
    void (*ack_cq_events)(struct ibv_cq *cq, unsigned int nevents);
};

#endif
