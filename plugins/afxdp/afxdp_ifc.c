/* The afxdp transport's view of the sending interface: its index, addresses, MTU and
 * queues (ioctls and getifaddrs), IPv4 name resolution (plugins/common), and next-hop Ethernet
 * addresses from the kernel's neighbour table (/proc/net/arp of the caller's network
 * namespace). */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "afxdp.h"
#include "spcu_net.h"

#define AFX_ATF_COM 0x02 /* neighbour entry complete (ATF_COM of net/if_arp.h) */
#define AFX_DISCARD_PORT 9

static int ifreq_ioctl(int fd, const char *ifname, unsigned long req, struct ifreq *ifr)
{
    memset(ifr, 0, sizeof *ifr);
    snprintf(ifr->ifr_name, sizeof ifr->ifr_name, "%s", ifname);
    return ioctl(fd, req, ifr) < 0 ? -errno : 0;
}

int afx_if_running(int fd, const char *ifname)
{
    struct ifreq ifr;
    int rc = ifreq_ioctl(fd, ifname, SIOCGIFFLAGS, &ifr);
    if (rc < 0)
        return rc;
    return (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING) ? 0 : -ENETDOWN;
}

/* Queues the driver reports through ETHTOOL_GCHANNELS; 0 when it does not say. */
static unsigned if_queue_count(int fd, const char *ifname)
{
    struct ethtool_channels ch = {.cmd = ETHTOOL_GCHANNELS};
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    ifr.ifr_data = (void *)&ch;
    if (ioctl(fd, SIOCETHTOOL, &ifr) < 0)
        return 0;
    unsigned separate = ch.rx_count > ch.tx_count ? ch.rx_count : ch.tx_count;
    return separate + ch.combined_count;
}

static void first_ipv4(const char *ifname, struct afx_ifinfo *out)
{
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) < 0)
        return;
    for (struct ifaddrs *a = list; a; a = a->ifa_next) {
        if (a->ifa_addr && a->ifa_addr->sa_family == AF_INET && !strcmp(a->ifa_name, ifname)) {
            memcpy(out->ipv4, &((const struct sockaddr_in *)(void *)a->ifa_addr)->sin_addr, 4);
            out->has_ipv4 = 1;
            break;
        }
    }
    freeifaddrs(list);
}

int afx_if_query(struct spc_transport *t, const char *ifname, struct afx_ifinfo *out)
{
    memset(out, 0, sizeof *out);
    if (strlen(ifname) >= sizeof out->name) {
        t->svc->set_error(t, "interface name \"%s\" is longer than %d characters", ifname,
                          IF_NAMESIZE - 1);
        return -SPC_ECONFIG;
    }
    snprintf(out->name, sizeof out->name, "%s", ifname);
    out->index = (int)if_nametoindex(ifname);
    if (out->index == 0) {
        t->svc->set_error(t, "no such interface \"%s\" in this network namespace", ifname);
        return -ENODEV;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int rc = -errno;
        t->svc->set_error(t, "socket for interface queries: %s", strerror(-rc));
        return rc;
    }
    struct ifreq ifr;
    int rc = ifreq_ioctl(fd, ifname, SIOCGIFHWADDR, &ifr);
    if (rc == 0)
        memcpy(out->mac, ifr.ifr_hwaddr.sa_data, 6);
    if (rc == 0 && (rc = ifreq_ioctl(fd, ifname, SIOCGIFMTU, &ifr)) == 0)
        out->mtu = (unsigned)ifr.ifr_mtu;
    if (rc < 0)
        t->svc->set_error(t, "querying interface %s: %s", ifname, strerror(-rc));
    else
        out->n_queues = if_queue_count(fd, ifname);
    close(fd);
    first_ipv4(ifname, out);
    return rc;
}

int afx_resolve_v4(struct spc_transport *t, const char *what, const char *host, uint8_t out[4])
{
    const char *why = NULL;
    int rc = spcu_resolve_ipv4(host, out, &why);
    if (rc < 0)
        t->svc->set_error(t, "cannot resolve %s \"%s\" to an IPv4 address (afxdp frames are "
                          "IPv4): %s", what, host, why ? why : t->svc->strerror(rc));
    return rc;
}

/* One pass over /proc/net/arp. Returns 1 and fills mac when ip has a complete entry on
 * ifname, else 0. */
static int arp_table_find(const char *ifname, const uint8_t ip[4], uint8_t mac[6])
{
    FILE *f = fopen("/proc/net/arp", "re");
    if (!f)
        return 0;
    char want[INET_ADDRSTRLEN], line[256];
    inet_ntop(AF_INET, ip, want, sizeof want);
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char addr[64], hw[64], dev[64];
        unsigned type, flags;
        if (sscanf(line, "%63s 0x%x 0x%x %63s %*s %63s", addr, &type, &flags, hw, dev) != 5)
            continue;
        if (strcmp(addr, want) || strcmp(dev, ifname) || !(flags & AFX_ATF_COM))
            continue;
        unsigned m[6];
        if (sscanf(hw, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) == 6) {
            for (int i = 0; i < 6; i++)
                mac[i] = (uint8_t)m[i];
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* Makes the kernel resolve ip: one empty datagram to its discard port, sent from a
 * socket bound to the interface. */
static void neigh_provoke(const struct afx_ifinfo *ifc, const uint8_t ip[4])
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(AFX_DISCARD_PORT)};
    memcpy(&sin.sin_addr, ip, 4);
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifc->name, (socklen_t)strlen(ifc->name)) == 0)
        (void)sendto(fd, "", 0, MSG_DONTWAIT, (const struct sockaddr *)&sin, sizeof sin);
    close(fd);
}

int afx_neigh_lookup(struct spc_transport *t, const struct afx_ifinfo *ifc, const uint8_t ip[4],
                     unsigned timeout_ms, uint8_t mac[6])
{
    if (arp_table_find(ifc->name, ip, mac))
        return 0;
    neigh_provoke(ifc, ip);
    const struct timespec step = {0, 10 * 1000000L};
    for (unsigned waited = 0; waited < timeout_ms; waited += 10) {
        nanosleep(&step, NULL);
        if (arp_table_find(ifc->name, ip, mac))
            return 0;
    }
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, ip, text, sizeof text);
    t->svc->set_error(t, "no neighbour entry for %s on %s after %u ms (the transport sends "
                      "only to on-link hosts it can resolve): give destination_mac",
                      text, ifc->name, timeout_ms);
    return -EHOSTUNREACH;
}
