/* Private to the afxdp transport: what afxdp.c (the socket, UMEM and rings) asks of
 * afxdp_ifc.c (the interface and its neighbours). Nothing here is exported. */
#ifndef SPC_AFXDP_H
#define SPC_AFXDP_H

#include <net/if.h>
#include <stdint.h>

#include "speadcast/transport.h"

/* What open learns about the sending interface. */
struct afx_ifinfo {
    char name[IF_NAMESIZE];
    int index;
    uint8_t mac[6];
    uint8_t ipv4[4];    /* its first IPv4 address */
    int has_ipv4;
    unsigned mtu;
    unsigned n_queues;  /* queues the driver reports (0 = unknown) */
};

/* Looks up ifname: index, MAC, first IPv4 address, MTU and queue count.
 * Errors: -ENODEV (no such interface, text names it), other -errno. */
int afx_if_query(struct spc_transport *t, const char *ifname, struct afx_ifinfo *out);

/* Resolves host (a name or dotted quad) to an IPv4 address (spcu_resolve_ipv4); what
 * names the option in the error text. Errors: those of spcu_resolve_ipv4. */
int afx_resolve_v4(struct spc_transport *t, const char *what, const char *host,
                   uint8_t out[4]);

/* The Ethernet address of on-link neighbour ip on the interface, from the kernel's
 * neighbour table; when it has no complete entry, resolution is started by sending one
 * empty UDP datagram to the discard port (9) through the kernel and the table is read
 * again for up to timeout_ms. Errors: -EHOSTUNREACH (text says to give destination_mac). */
int afx_neigh_lookup(struct spc_transport *t, const struct afx_ifinfo *ifc, const uint8_t ip[4],
                     unsigned timeout_ms, uint8_t mac[6]);

/* 0 while the interface is up with a carrier (IFF_RUNNING); -ENETDOWN otherwise, or
 * -errno when it cannot be asked. fd is any socket of the interface's namespace. */
int afx_if_running(int fd, const char *ifname);

#endif
