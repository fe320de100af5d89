/* Ethernet/IPv4/UDP header building (frame.h). */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "speadcast/frame.h"

#define ETHERTYPE_IPV4 0x0800
#define IPPROTO_UDP_NUM 17
#define IPV4_FLAG_DF 0x4000

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

bool spc_frame_ipv4_is_multicast(const uint8_t ip[4])
{
    return (ip[0] & 0xf0) == 0xe0;
}

int spc_frame_multicast_mac(const uint8_t ip[4], uint8_t mac[6])
{
    if (!ip || !mac || !spc_frame_ipv4_is_multicast(ip))
        return -EINVAL;
    mac[0] = 0x01;
    mac[1] = 0x00;
    mac[2] = 0x5e;
    mac[3] = ip[1] & 0x7f;
    mac[4] = ip[2];
    mac[5] = ip[3];
    return 0;
}

uint16_t spc_ipv4_checksum(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t sum = 0;
    size_t i = 0;
    for (; i + 1 < len; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (i < len)
        sum += (uint32_t)p[i] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

int spc_frame_write(const struct spc_frame_params *p, size_t payload_len, uint16_t id,
                    uint8_t hdr[SPC_FRAME_HEADER_LEN])
{
    if (!p || !hdr || p->struct_size < offsetof(struct spc_frame_params, flags) + sizeof p->flags)
        return -EINVAL;
    if (payload_len > SPC_FRAME_MAX_PAYLOAD)
        return -EMSGSIZE;

    uint8_t *eth = hdr;
    memcpy(eth, p->dst_mac, 6);
    memcpy(eth + 6, p->src_mac, 6);
    put16(eth + 12, ETHERTYPE_IPV4);

    uint8_t *ip = hdr + SPC_FRAME_ETH_LEN;
    ip[0] = 0x45; /* version 4, 5 words */
    ip[1] = p->tos;
    put16(ip + 2, (uint16_t)(SPC_FRAME_IPV4_LEN + SPC_FRAME_UDP_LEN + payload_len));
    put16(ip + 4, id);
    put16(ip + 6, IPV4_FLAG_DF);
    ip[8] = p->ttl;
    ip[9] = IPPROTO_UDP_NUM;
    put16(ip + 10, 0);
    memcpy(ip + 12, p->src_ip, 4);
    memcpy(ip + 16, p->dst_ip, 4);
    if (!(p->flags & SPC_FRAME_NO_IP_CHECKSUM))
        put16(ip + 10, spc_ipv4_checksum(ip, SPC_FRAME_IPV4_LEN));

    uint8_t *udp = ip + SPC_FRAME_IPV4_LEN;
    put16(udp, p->src_port);
    put16(udp + 2, p->dst_port);
    put16(udp + 4, (uint16_t)(SPC_FRAME_UDP_LEN + payload_len));
    put16(udp + 6, 0);
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int spc_mac_parse(const char *text, uint8_t mac[6])
{
    if (!text || !mac)
        return -EINVAL;
    uint8_t out[6];
    const char *s = text;
    for (int i = 0; i < 6; i++) {
        int hi = hexval(s[0]);
        int lo = hi < 0 ? -1 : hexval(s[1]);
        if (lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
        s += 2;
        if (i < 5) {
            if (*s != ':' && *s != '-')
                return -EINVAL;
            s++;
        }
    }
    if (*s)
        return -EINVAL;
    memcpy(mac, out, 6);
    return 0;
}
