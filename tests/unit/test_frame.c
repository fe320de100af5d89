/* Ethernet/IPv4/UDP frame building (frame.h). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "speadcast/frame.h"

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

Test(frame, multicast_mac_takes_low_23_bits)
{
    uint8_t mac[6];
    const uint8_t g1[4] = {239, 255, 10, 1};
    cr_assert_eq(spc_frame_multicast_mac(g1, mac), 0);
    const uint8_t want1[6] = {0x01, 0x00, 0x5e, 0x7f, 0x0a, 0x01};
    cr_assert_arr_eq(mac, want1, 6);
    /* The top bit of the second octet is not part of the MAC. */
    const uint8_t g2[4] = {224, 128, 1, 2};
    cr_assert_eq(spc_frame_multicast_mac(g2, mac), 0);
    const uint8_t want2[6] = {0x01, 0x00, 0x5e, 0x00, 0x01, 0x02};
    cr_assert_arr_eq(mac, want2, 6);
}

Test(frame, multicast_mac_refuses_unicast)
{
    uint8_t mac[6] = {9, 9, 9, 9, 9, 9};
    const uint8_t u[4] = {192, 168, 0, 1};
    const uint8_t edge[4] = {240, 0, 0, 1};
    cr_assert_eq(spc_frame_multicast_mac(u, mac), -EINVAL);
    cr_assert_eq(spc_frame_multicast_mac(edge, mac), -EINVAL);
    cr_assert_eq(mac[0], 9, "mac untouched on error");
    const uint8_t lo[4] = {224, 0, 0, 0}, hi[4] = {239, 255, 255, 255};
    cr_assert(spc_frame_ipv4_is_multicast(lo));
    cr_assert(spc_frame_ipv4_is_multicast(hi));
    cr_assert_not(spc_frame_ipv4_is_multicast(u));
}

Test(frame, checksum_known_header)
{
    /* A textbook IPv4 header whose checksum is 0xb861. */
    uint8_t h[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                     0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    cr_assert_eq(spc_ipv4_checksum(h, sizeof h), 0xb861);
    h[10] = 0xb8;
    h[11] = 0x61;
    cr_assert_eq(spc_ipv4_checksum(h, sizeof h), 0, "a correct header sums to 0");
    h[15] ^= 1;
    cr_assert_neq(spc_ipv4_checksum(h, sizeof h), 0);
}

Test(frame, checksum_odd_length_and_carries)
{
    const uint8_t odd[3] = {0x01, 0x02, 0x03};
    /* 0x0102 + 0x0300 = 0x0402 -> ~ = 0xfbfd */
    cr_assert_eq(spc_ipv4_checksum(odd, 3), 0xfbfd);
    uint8_t ff[64];
    memset(ff, 0xff, sizeof ff);
    cr_assert_eq(spc_ipv4_checksum(ff, sizeof ff), 0x0000);
    cr_assert_eq(spc_ipv4_checksum(ff, 0), 0xffff);
}

static struct spc_frame_params sample_params(void)
{
    struct spc_frame_params p = {
        SPC_FRAME_PARAMS_INIT,
        .src_mac = {0x02, 0, 0, 0, 0, 1},
        .src_ip = {10, 1, 2, 3},
        .dst_ip = {239, 1, 2, 3},
        .src_port = 40000,
        .dst_port = 7148,
        .ttl = 4,
        .tos = 0x10,
    };
    spc_frame_multicast_mac(p.dst_ip, p.dst_mac);
    return p;
}

Test(frame, headers_field_by_field)
{
    struct spc_frame_params p = sample_params();
    uint8_t h[SPC_FRAME_HEADER_LEN];
    memset(h, 0xaa, sizeof h);
    cr_assert_eq(spc_frame_write(&p, 1000, 0x1234, h), 0);
    const uint8_t dmac[6] = {0x01, 0x00, 0x5e, 0x01, 0x02, 0x03};
    cr_assert_arr_eq(h, dmac, 6);
    cr_assert_arr_eq(h + 6, p.src_mac, 6);
    cr_assert_eq(get16(h + 12), 0x0800);
    const uint8_t *ip = h + 14;
    cr_assert_eq(ip[0], 0x45);
    cr_assert_eq(ip[1], 0x10);
    cr_assert_eq(get16(ip + 2), 20 + 8 + 1000);
    cr_assert_eq(get16(ip + 4), 0x1234);
    cr_assert_eq(get16(ip + 6), 0x4000, "DF set, no fragment offset");
    cr_assert_eq(ip[8], 4);
    cr_assert_eq(ip[9], 17);
    cr_assert_arr_eq(ip + 12, p.src_ip, 4);
    cr_assert_arr_eq(ip + 16, p.dst_ip, 4);
    cr_assert_eq(spc_ipv4_checksum(ip, 20), 0, "IPv4 checksum verifies");
    cr_assert_neq(get16(ip + 10), 0);
    const uint8_t *udp = ip + 20;
    cr_assert_eq(get16(udp), 40000);
    cr_assert_eq(get16(udp + 2), 7148);
    cr_assert_eq(get16(udp + 4), 8 + 1000);
    cr_assert_eq(get16(udp + 6), 0, "UDP checksum 0 = none");
}

Test(frame, no_ip_checksum_flag)
{
    struct spc_frame_params p = sample_params();
    p.flags = SPC_FRAME_NO_IP_CHECKSUM;
    uint8_t h[SPC_FRAME_HEADER_LEN];
    cr_assert_eq(spc_frame_write(&p, 8, 1, h), 0);
    cr_assert_eq(get16(h + 14 + 10), 0);
}

Test(frame, payload_size_limits)
{
    struct spc_frame_params p = sample_params();
    uint8_t h[SPC_FRAME_HEADER_LEN];
    cr_assert_eq(spc_frame_write(&p, SPC_FRAME_MAX_PAYLOAD, 0, h), 0);
    cr_assert_eq(get16(h + 14 + 2), 65535);
    cr_assert_eq(spc_frame_write(&p, SPC_FRAME_MAX_PAYLOAD + 1, 0, h), -EMSGSIZE);
    cr_assert_eq(spc_frame_write(&p, 0, 0, h), 0);
    cr_assert_eq(get16(h + 14 + 2), 28);
    cr_assert_eq(spc_frame_write(NULL, 0, 0, h), -EINVAL);
    cr_assert_eq(spc_frame_write(&p, 0, 0, NULL), -EINVAL);
    p.struct_size = 8; /* a caller built against a header without all the fields */
    cr_assert_eq(spc_frame_write(&p, 0, 0, h), -EINVAL);
}

Test(frame, mac_parse)
{
    uint8_t mac[6];
    cr_assert_eq(spc_mac_parse("01:23:45:67:89:ab", mac), 0);
    const uint8_t want[6] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab};
    cr_assert_arr_eq(mac, want, 6);
    cr_assert_eq(spc_mac_parse("01-23-45-67-89-AB", mac), 0);
    cr_assert_arr_eq(mac, want, 6);
    const char *bad[] = {"", "01:23:45:67:89", "01:23:45:67:89:ab:", "01:23:45:67:89:abc",
                         "0g:23:45:67:89:ab", "01;23:45:67:89:ab", "1:23:45:67:89:ab", NULL};
    memset(mac, 7, sizeof mac);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(spc_mac_parse(bad[i], mac), -EINVAL, "input %zu", i);
    cr_assert_eq(mac[0], 7, "mac untouched on error");
}
