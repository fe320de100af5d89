/* A simulated RDMA NIC behind the ibverbs plugin's verbs table (plugins/ibverbs/ibvp_verbs.h),
 * for tests on machines without one.
 *
 * What it models (rules from rdma-core's mlx5 provider and the kernel's mlx5/uverbs code,
 * with a ConnectX-6's limits by default)
 * - Host: getifaddrs lists "lo" (127.0.0.1), the simulated interface (address, index,
 *   Ethernet address from the config) and an 802.1Q VLAN device on it ("simeth0.100",
 *   10.8.100.2, VLAN 100, same Ethernet address). if_mtu gives the config's MTU for both,
 *   if_vlan names the VLAN device's id.
 * - Devices: the device owning the interface (one Ethernet port; its GID table has an
 *   entry on the interface's net device and the IPv4-mapped GID of its address, or only
 *   the latter with match_by_gid, then the same two for the VLAN device), optionally a
 *   second device owning nothing first.
 * - Objects: contexts, protection domains, memory regions, completion channels (a
 *   timerfd), completion queues, RAW_PACKET queue pairs with the RESET/INIT/RTR/RTS/ERR
 *   state machine, rate limits. Misuse the real device would refuse (wrong state, bad
 *   port, too many SGEs, a full send queue, destroying objects still in use, unacked
 *   events) fails the call and counts as a violation.
 * - Send queue (mlx5): a raw packet request takes 48 bytes + 16 per SGE, rounded up to
 *   64-byte blocks; create_qp fails with EINVAL when max_send_sge > max_sge or when
 *   roundup_pow2(max_send_wr * request size) / 64 > max_qp_wr (blocks, not requests), and
 *   otherwise grants max_send_wr = that size / request size. A posted request holds its
 *   place until the completion covering it (its own or a later signalled one of the
 *   same queue pair) is polled; post_send beyond that fails with ENOMEM.
 * - IBV_SEND_IP_CSUM: refused (EINVAL) unless the device has IBV_DEVICE_RAW_IP_CSUM and
 *   the queue pair went to INIT with a port. Rate limits: only in RTS (EINVAL otherwise);
 *   max_burst_sz and typical_pkt_sz each only with its capability (EINVAL otherwise).
 * - Sending: post_send queues the requests; a request executes when it is due (posting
 *   time + delay) and the queue pair is polled or armed. Executing reads the SGE memory
 *   then (as DMA would, so a slot reused too early shows up as a wrong frame), checks
 *   every lkey and range against the live regions of the queue pair's PD
 *   (IBV_WC_LOC_PROT_ERR otherwise) and records the frame. A frame longer than the
 *   port MTU + 14 (+ 4 with an 802.1Q tag) is dropped silently with a successful
 *   completion, as a NIC does. A failed request puts the
 *   queue pair in ERR; later requests are flushed (IBV_WC_WR_FLUSH_ERR). A completion is
 *   queued for signalled requests and for requests that failed other than by flushing
 *   (with flush_every_wr, for every flushed request too).
 * - Events: an armed completion queue makes the channel fd readable when the next
 *   request that will produce a completion is due (requests already due when it is
 *   armed do not count, as on hardware).
 *
 * One simulated host per process (Criterion runs each test in its own process); not
 * thread-safe.
 */
#ifndef SIMDEV_H
#define SIMDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibvp_verbs.h"

/* The VLAN device on the simulated interface: "<ifname>.100". */
#define SIMDEV_VLAN_ID 100
#define SIMDEV_VLAN_IFINDEX 8
#define SIMDEV_VLAN_ADDRESS "10.8.100.2"

struct simdev_config {
    const char *dev_name;       /* "sim_mlx5_0" */
    const char *ifname;         /* "simeth0" */
    uint8_t ip[4];              /* 10.8.0.2 */
    uint8_t mac[6];             /* 02:5e:00:00:00:02 */
    int ifindex;                /* 7 */
    bool match_by_gid;          /* no GID entry names the net device (ndev_ifindex 0) */
    bool extra_device;          /* a device owning nothing is listed first */
    bool no_devices;            /* no RDMA device at all */
    bool list_fails;            /* get_device_list fails with ENOSYS */
    bool infiniband_port;       /* the port's link layer is InfiniBand, not Ethernet */
    uint32_t max_sge;           /* device limit (default 30, a ConnectX-6) */
    uint32_t max_qp_wr;         /* 64-byte send-queue blocks (default 32768) */
    uint32_t sq_wqebb_limit;    /* blocks create_qp really allows, when below max_qp_wr
                                   (a device whose limit is not what it reports); 0 = no */
    int max_cqe;                /* default 4194303 */
    int mtu;                    /* of both interfaces (default 1500) */
    int if_mtu_errno;           /* if_mtu fails with this (0 = no) */
    int if_vlan_errno;          /* if_vlan fails with this (0 = no) */
    bool flush_every_wr;        /* a completion for every flushed request */
    bool raw_ip_csum;           /* IBV_DEVICE_RAW_IP_CSUM */
    uint32_t pacing_min_kbps;   /* packet pacing range; max 0 = no pacing */
    uint32_t pacing_max_kbps;
    bool pacing_raw_qp;         /* pacing supported on RAW_PACKET queue pairs */
    bool pacing_burst;          /* max_burst_sz accepted */
    bool pacing_typical;        /* typical_pkt_sz accepted */
    int rate_limit_errno;       /* modify_qp_rate_limit fails with this (0 = no) */
    int num_comp_vectors;       /* default 4 */
    int create_qp_errno;        /* create_qp fails with this (e.g. EPERM) */
    size_t max_frame;           /* longest frame sent (default 9014) */
};

/* The defaults listed above. */
void simdev_default_config(struct simdev_config *c);

/* Starts a simulated host with this config (copied); replaces any earlier one, which
 * must have no live objects. */
void simdev_install(const struct simdev_config *c);
void simdev_uninstall(void);

/* The table to put behind the plugin. */
const struct ibvp_verbs *simdev_verbs(void);

/* The simulator's clock (CLOCK_MONOTONIC, ns): when requests are due. A test gives the
 * plugin the same clock (svc->clock_ns). */
uint64_t simdev_now_ns(void);

/* ---------------------------------------------------------------- faults */

/* The request with this posting sequence number (0 = the first posted since install)
 * fails with status when it executes. UINT64_MAX = none. */
void simdev_fail_wr(uint64_t seq, enum ibv_wc_status status);
/* post_send refuses the request with this sequence number (and the rest of its chain)
 * with err, once; the requests before it in the chain are posted. */
void simdev_fail_post(uint64_t seq, int err);
/* Requests become due this long after they are posted. */
void simdev_set_delay_ns(uint64_t ns);
/* While on, requests on a queue pair in RTS never execute. */
void simdev_set_stall(bool on);
/* Every queue pair enters the error state (as after a fatal asynchronous error): the
 * requests it holds are flushed. */
void simdev_qp_error(void);
/* Requests of a queue pair in the error state are flushed this long after it entered
 * it; with a delay, a queue pair destroyed with requests still queued goes on flushing
 * them into its completion queue (completions for a queue pair that no longer exists,
 * as a provider that does not clean the queue would leave them). */
void simdev_set_flush_delay_ns(uint64_t ns);
/* While on, poll_cq fails (returns -1), as for a completion queue in error. */
void simdev_set_poll_fails(bool on);
/* From now on modify_qp_rate_limit fails with err (0 = no longer). */
void simdev_set_rate_limit_errno(int err);

/* ---------------------------------------------------------------- observations */

struct simdev_sge {
    uint64_t addr;
    uint32_t length;
    uint32_t lkey;
};

/* One frame the device put on the wire. */
struct simdev_frame {
    uint8_t *data;
    size_t len;
    uint64_t seq;          /* posting sequence number of its request */
    unsigned send_flags;
    int num_sge;
    struct simdev_sge sge[32];
};

struct simdev_stats {
    uint64_t post_calls;       /* post_send calls that posted at least one request */
    uint64_t wrs_posted;
    uint64_t signaled;         /* requests posted with IBV_SEND_SIGNALED */
    uint64_t chains_last_signaled; /* post_send calls whose last request was signalled */
    uint64_t chains_mid_signaled;  /* signalled requests that were not last in their call */
    uint64_t max_chain;
    uint64_t executed;         /* requests executed (sent or failed) */
    uint64_t cqes;             /* completions queued */
    uint64_t wc_errors;        /* requests that failed (flushes included) */
    uint64_t lkey_errors;      /* requests failed for an lkey or range outside the regions */
    uint64_t sge_refused;      /* requests refused by post_send for too many SGEs */
    uint64_t events;           /* completion events delivered */
    uint64_t arms;             /* req_notify_cq calls */
    uint64_t qps_created;
    uint64_t mrs_registered;
    uint64_t rate_limit_calls;
    uint64_t rate_limit_set;   /* successful rate limit calls */
    struct ibv_qp_rate_limit_attr rate_limit; /* the last one set */
    int cq_vector;             /* comp_vector of the last completion queue made */
    int cq_channel;            /* whether it has a channel */
    int cq_size;
    uint32_t qp_max_sge;       /* cap.max_send_sge of the last queue pair made */
    uint32_t qp_max_wr;        /* cap.max_send_wr it asked for */
    uint32_t qp_granted_wr;    /* cap.max_send_wr granted (what the queue holds) */
    uint32_t qp_max_recv_wr;   /* cap.max_recv_wr it asked for */
    uint64_t qps_refused;      /* create_qp calls refused for the send-queue size */
    uint64_t sq_full;          /* post_send refused for a full send queue (ENOMEM) */
    uint64_t mtu_dropped;      /* frames dropped for exceeding the MTU (completed OK) */
    unsigned last_mr_access;   /* access flags of the last memory registered */
    uint64_t mrs_relaxed;      /* registrations with IBV_ACCESS_RELAXED_ORDERING */
    uint64_t violations;       /* misuse the device refused or would have refused */
    char first_violation[256];
};

const struct simdev_stats *simdev_stats(void);
size_t simdev_n_frames(void);
const struct simdev_frame *simdev_frame(size_t i);
void simdev_clear_frames(void);
/* Verbs objects still open (contexts, PDs, MRs, channels, CQs, QPs). */
int simdev_live_objects(void);
/* Requests posted and not yet executed. */
size_t simdev_pending(void);

#endif
