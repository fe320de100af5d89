/* The simulated RDMA NIC's own rules (tests/ibverbs/simdev.h), driven through its verbs
 * table directly: the mlx5 rules a real ConnectX enforces, which the plugin tests
 * (test_ibverbs_sim.c) rely on the simulator to catch. */
#ifdef SPC_HAVE_IBVERBS_OBJECTS

#include <criterion/criterion.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdint.h>
#include <string.h>

#include "simdev.h"

static struct simdev_config cfg; /* the device each test installs */

static void d_init(void)
{
    simdev_default_config(&cfg);
}

/* The simulated device driven directly, for the rules the plugin already keeps. */
static struct {
    const struct ibvp_verbs *v;
    struct ibv_device **list;
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_cq *cq;
    struct ibv_qp *qp;
    struct ibv_mr *mr;
    uint8_t buf[4096];
} D;

static void d_open(void)
{
    simdev_install(&cfg);
    D.v = simdev_verbs();
    int n = 0;
    D.list = D.v->get_device_list(&n);
    cr_assert_eq(n, 1);
    cr_assert_not_null(D.ctx = D.v->open_device(D.list[0]));
    cr_assert_not_null(D.pd = D.v->alloc_pd(D.ctx));
    cr_assert_not_null(D.cq = D.v->create_cq(D.ctx, 64, NULL, NULL, 0));
    cr_assert_not_null(D.mr = D.v->reg_mr_iova2(D.pd, D.buf, sizeof D.buf, (uintptr_t)D.buf, 0));
    memset(D.buf, 0, sizeof D.buf);
}

static struct ibv_qp *d_qp(uint32_t wr, uint32_t sge)
{
    struct ibv_qp_init_attr a = {.send_cq = D.cq, .recv_cq = D.cq, .qp_type = IBV_QPT_RAW_PACKET,
                                 .cap = {.max_send_wr = wr, .max_send_sge = sge}};
    return D.v->create_qp(D.pd, &a);
}

/* A queue pair walked to state (through INIT with port 1 when with_port). */
static void d_qp_to(enum ibv_qp_state state, bool with_port, uint32_t wr)
{
    cr_assert_not_null(D.qp = d_qp(wr, 1));
    enum ibv_qp_state steps[] = {IBV_QPS_INIT, IBV_QPS_RTR, IBV_QPS_RTS};
    for (size_t i = 0; i < 3 && (i == 0 || steps[i - 1] != state); i++) {
        struct ibv_qp_attr qa = {.qp_state = steps[i], .port_num = 1};
        int mask = IBV_QP_STATE | (steps[i] == IBV_QPS_INIT && with_port ? IBV_QP_PORT : 0);
        cr_assert_eq(D.v->modify_qp(D.qp, &qa, mask), steps[i] == IBV_QPS_INIT && !with_port ? EINVAL : 0);
        if (steps[i] == IBV_QPS_INIT && !with_port)
            return;
    }
}

static int d_post(size_t len, unsigned flags)
{
    struct ibv_sge sge = {(uintptr_t)D.buf, (uint32_t)len, D.mr->lkey};
    struct ibv_send_wr wr = {.sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_SEND,
                             .send_flags = flags}, *bad;
    return D.v->post_send(D.qp, &wr, &bad);
}

static void d_close(void)
{
    if (D.qp)
        D.v->destroy_qp(D.qp);
    D.v->dereg_mr(D.mr);
    D.v->destroy_cq(D.cq);
    D.v->dealloc_pd(D.pd);
    D.v->close_device(D.ctx);
    D.v->free_device_list(D.list);
    cr_expect_eq(simdev_live_objects(), 0);
    memset(&D, 0, sizeof D);
}

TestSuite(ibverbs_simdev, .init = d_init, .fini = simdev_uninstall);

Test(ibverbs_simdev, send_queue_sizing_follows_mlx5)
{
    d_open();
    struct {
        uint32_t wr, sge;
        bool ok;
        uint32_t granted;
    } cases[] = {
        {6553, 16, true, 6553},   /* 6553 * 320 bytes round up to 2^21: 32768 blocks */
        {6554, 16, false, 0},     /* 2^22 bytes: 65536 blocks */
        {16384, 4, true, 16384},  /* 128-byte requests */
        {16385, 4, false, 0},
        {100, 1, true, 128},      /* 64-byte requests: the power of two holds 128 */
        {1, 31, false, 0},        /* more SGEs than max_sge 30 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ibv_qp_init_attr a = {.send_cq = D.cq, .recv_cq = D.cq, .qp_type = IBV_QPT_RAW_PACKET,
                                     .cap = {.max_send_wr = cases[i].wr, .max_send_sge = cases[i].sge}};
        struct ibv_qp *qp = D.v->create_qp(D.pd, &a);
        cr_expect_eq(qp != NULL, cases[i].ok, "case %zu", i);
        if (qp) {
            cr_expect_eq(a.cap.max_send_wr, cases[i].granted, "case %zu", i);
            D.v->destroy_qp(qp);
        } else {
            cr_expect_eq(errno, EINVAL);
        }
    }
    cr_expect_eq(simdev_stats()->violations, 0);
    d_close();
}

Test(ibverbs_simdev, send_queue_space_returns_when_the_completion_is_polled)
{
    d_open();
    d_qp_to(IBV_QPS_RTS, true, 4); /* 4 * 64 bytes: exactly 4 */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(d_post(60, 0), 0);
    cr_assert_eq(d_post(60, IBV_SEND_SIGNALED), 0);
    cr_expect_eq(d_post(60, 0), ENOMEM, "full, though nothing was polled yet");
    struct ibv_wc wc[4];
    cr_assert_eq(D.v->poll_cq(D.cq, 4, wc), 1); /* executes all four; one completion */
    cr_expect_eq(simdev_n_frames(), 4);
    cr_assert_eq(d_post(60, 0), 0, "the completion freed four places");
    cr_assert_eq(simdev_stats()->sq_full, 1);
    d_close();
}

Test(ibverbs_simdev, unsignalled_requests_hold_their_place_until_covered)
{
    d_open();
    d_qp_to(IBV_QPS_RTS, true, 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(d_post(60, 0), 0);
    struct ibv_wc wc[4];
    cr_assert_eq(D.v->poll_cq(D.cq, 4, wc), 0);
    cr_expect_eq(simdev_n_frames(), 4, "sent, yet no completion covers them");
    cr_expect_eq(d_post(60, 0), ENOMEM);
    d_close();
}

Test(ibverbs_simdev, oversize_frames_vanish_with_a_successful_completion)
{
    d_open();
    d_qp_to(IBV_QPS_RTS, true, 4);
    cr_assert_eq(d_post(1514, IBV_SEND_SIGNALED), 0);
    cr_assert_eq(d_post(1515, IBV_SEND_SIGNALED), 0);
    struct ibv_wc wc[4];
    cr_assert_eq(D.v->poll_cq(D.cq, 2, wc), 2); /* the device reads the frames now */
    D.buf[12] = 0x81; /* an 802.1Q tag allows four bytes more */
    cr_assert_eq(d_post(1518, IBV_SEND_SIGNALED), 0);
    cr_assert_eq(D.v->poll_cq(D.cq, 2, wc + 2), 1);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(wc[i].status, IBV_WC_SUCCESS);
    cr_expect_eq(simdev_n_frames(), 2);
    cr_expect_eq(simdev_frame(0)->len, 1514);
    cr_expect_eq(simdev_frame(1)->len, 1518);
    cr_expect_eq(simdev_stats()->mtu_dropped, 1);
    d_close();
}

Test(ibverbs_simdev, ip_checksum_offload_needs_the_capability)
{
    d_open();
    d_qp_to(IBV_QPS_RTS, true, 4);
    cr_expect_eq(d_post(60, IBV_SEND_IP_CSUM | IBV_SEND_SIGNALED), EINVAL);
    cr_expect_eq(simdev_stats()->violations, 1);
    d_close();
    cfg.raw_ip_csum = true;
    d_open();
    d_qp_to(IBV_QPS_RTS, true, 4);
    cr_expect_eq(d_post(60, IBV_SEND_IP_CSUM | IBV_SEND_SIGNALED), 0);
    cr_expect_eq(simdev_stats()->violations, 0);
    d_close();
}

Test(ibverbs_simdev, ip_checksum_offload_needs_init_with_a_port)
{
    cfg.raw_ip_csum = true;
    d_open();
    d_qp_to(IBV_QPS_INIT, false, 4);
    cr_expect_eq(D.qp->state, IBV_QPS_RESET, "INIT without a port is refused");
    d_close();
}

Test(ibverbs_simdev, rate_limit_only_in_rts_and_hints_only_with_their_capability)
{
    cfg.pacing_min_kbps = 1000;
    cfg.pacing_max_kbps = 1000000;
    cfg.pacing_raw_qp = true;
    cfg.pacing_burst = true;
    d_open();
    d_qp_to(IBV_QPS_RTR, true, 4);
    struct ibv_qp_rate_limit_attr rl = {.rate_limit = 5000};
    cr_expect_eq(D.v->modify_qp_rate_limit(D.qp, &rl), EINVAL, "RTR");
    cr_expect_eq(simdev_stats()->violations, 1);
    D.v->destroy_qp(D.qp);
    d_qp_to(IBV_QPS_RTS, true, 4);
    cr_expect_eq(D.v->modify_qp_rate_limit(D.qp, &rl), 0);
    rl.max_burst_sz = 9000;
    cr_expect_eq(D.v->modify_qp_rate_limit(D.qp, &rl), 0, "burst bound supported");
    rl.typical_pkt_sz = 1514;
    cr_expect_eq(D.v->modify_qp_rate_limit(D.qp, &rl), EINVAL, "typical size not supported");
    d_close();
}

Test(ibverbs_simdev, vlan_device_in_the_interface_list)
{
    d_open();
    struct ifaddrs *list;
    cr_assert_eq(D.v->getifaddrs(&list), 0);
    bool found = false;
    for (struct ifaddrs *a = list; a; a = a->ifa_next)
        found |= !strcmp(a->ifa_name, "simeth0.100");
    D.v->freeifaddrs(list);
    cr_expect(found);
    uint16_t vid = 0;
    cr_expect_eq(D.v->if_vlan("simeth0.100", &vid), 1);
    cr_expect_eq(vid, SIMDEV_VLAN_ID);
    cr_expect_eq(D.v->if_vlan("simeth0", &vid), 0);
    cr_expect_eq(D.v->if_mtu("simeth0"), 1500);
    d_close();
}

#endif /* SPC_HAVE_IBVERBS_OBJECTS */
