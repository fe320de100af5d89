/* Finding the RDMA device and port that own the interface of interface_address. */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "ibvp.h"

/* The interface holding ip: its name, index and Ethernet address. */
int ibvp_find_interface(struct ibvp *p, const uint8_t ip[4], int *ifindex, uint8_t mac[6])
{
    struct ifaddrs *list = NULL;
    if (p->v->getifaddrs(&list) < 0) {
        int rc = ibvp_errno_or(EIO);
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
int ibvp_find_device(struct ibvp *p, const uint8_t ip[4], int ifindex,
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

/* The interface must carry the frames as built: untagged (a VLAN device's frames would
 * need an 802.1Q tag, which the plugin does not write) and within its MTU (the NIC drops
 * longer frames yet reports success). Needs p->ifname. */
int ibvp_check_interface(struct ibvp *p)
{
    char dev[IF_NAMESIZE + 8];
    snprintf(dev, sizeof dev, "%.*s", (int)strcspn(p->ifname, ":"), p->ifname);
    uint16_t vid = 0;
    int rc = p->v->if_vlan(dev, &vid);
    if (rc < 0) {
        p->base.svc->set_error(&p->base, "cannot tell whether interface %s is a VLAN device: %s",
                               dev, strerror(-rc));
        return rc;
    }
    if (rc > 0) {
        p->base.svc->set_error(&p->base, "interface %s (address %s) is an 802.1Q VLAN device "
                               "(VLAN %u), and the ibverbs transport sends untagged frames, which "
                               "would leave on the untagged network of its parent: send from an "
                               "address of the parent interface, or use the udp transport",
                               dev, p->addr_text, (unsigned)vid);
        return -SPC_ENOTSUP;
    }
    int mtu = p->v->if_mtu(dev);
    if (mtu < 0) {
        p->base.svc->set_error(&p->base, "cannot read the MTU of interface %s: %s", dev,
                               strerror(-mtu));
        return mtu;
    }
    if ((uint64_t)p->max_payload + IBVP_IP_UDP_LEN > (uint64_t)mtu) {
        long most = (long)mtu - (long)IBVP_IP_UDP_LEN;
        p->base.svc->set_error(&p->base, "max_packet_size %zu does not fit the MTU %d of "
                               "interface %s (a packet needs 28 more bytes of IPv4 and UDP "
                               "headers, and the NIC silently drops longer frames): use "
                               "max_packet_size %ld or less, or raise the MTU",
                               p->max_payload, mtu, dev, most > 0 ? most : 0);
        return -EMSGSIZE;
    }
    return 0;
}
