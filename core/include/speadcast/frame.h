/* Ethernet/IPv4/UDP frame headers, for transports that put whole frames on a wire or in
 * a file (pcap, ibverbs). One implementation, reached by plugins through the core
 * services (transport.h, ABI minor 1) and by applications directly.
 *
 * The frame is: Ethernet II (14 bytes, EtherType 0x0800), IPv4 (20 bytes: version 4,
 * IHL 5, DF set, no options, protocol 17), UDP (8 bytes, checksum 0 = none, as IPv4
 * allows), then the payload.
 *
 * Thread rules: every function here is pure and thread-safe.
 */
#ifndef SPEADCAST_FRAME_H
#define SPEADCAST_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SPC_FRAME_ETH_LEN 14
#define SPC_FRAME_IPV4_LEN 20
#define SPC_FRAME_UDP_LEN 8
#define SPC_FRAME_HEADER_LEN 42 /* Ethernet + IPv4 + UDP */
/* Largest UDP payload an IPv4 datagram carries (total length is a 16-bit field). */
#define SPC_FRAME_MAX_PAYLOAD (65535 - SPC_FRAME_IPV4_LEN - SPC_FRAME_UDP_LEN)

/* Flags for struct spc_frame_params. */
#define SPC_FRAME_NO_IP_CHECKSUM 1u /* leave the IPv4 checksum 0 (the device fills it) */

/* What every frame of one flow shares. Addresses are in network byte order (the bytes
 * as on the wire, as in struct in_addr); ports in host byte order. Plugins pass it
 * through the core services, so it follows the ABI rule: struct_size first (set it with
 * SPC_FRAME_PARAMS_INIT), fields only ever appended. */
struct spc_frame_params {
    uint32_t struct_size;
    uint8_t src_mac[6];
    uint8_t dst_mac[6];
    uint8_t src_ip[4];
    uint8_t dst_ip[4];
    uint16_t src_port;
    uint16_t dst_port;
    uint8_t ttl;
    uint8_t tos;      /* DSCP and ECN bits */
    unsigned flags;   /* SPC_FRAME_* */
};
#define SPC_FRAME_PARAMS_INIT .struct_size = sizeof(struct spc_frame_params)

/* True for an IPv4 multicast group (224.0.0.0/4). */
bool spc_frame_ipv4_is_multicast(const uint8_t ip[4]);

/* The Ethernet address of an IPv4 multicast group: 01:00:5e followed by the low 23 bits
 * of the group. Errors: -EINVAL when ip is not multicast (mac untouched). */
int spc_frame_multicast_mac(const uint8_t ip[4], uint8_t mac[6]);

/* The Internet checksum (RFC 1071) of len bytes, as the 16-bit value to store
 * big-endian in a header whose checksum field was 0 when summed. Summing a header that
 * holds its correct checksum gives 0. */
uint16_t spc_ipv4_checksum(const void *data, size_t len);

/* Writes the SPC_FRAME_HEADER_LEN header bytes of a frame carrying payload_len bytes of
 * UDP payload into hdr: IPv4 identification id, total length and checksum (unless
 * SPC_FRAME_NO_IP_CHECKSUM) filled in. p and hdr are borrowed for the call.
 * Errors: -EMSGSIZE (payload_len > SPC_FRAME_MAX_PAYLOAD), -EINVAL (p or hdr NULL, or
 * p->struct_size too small for the fields above). */
int spc_frame_write(const struct spc_frame_params *p, size_t payload_len, uint16_t id,
                    uint8_t hdr[SPC_FRAME_HEADER_LEN]);

/* Parses "aa:bb:cc:dd:ee:ff" (hex digits either case, ':' or '-' between the six
 * octets). Errors: -EINVAL (mac untouched). */
int spc_mac_parse(const char *text, uint8_t mac[6]);

#ifdef __cplusplus
}
#endif

#endif
