/* speadcast-recv's file sources: pcap captures and files of SPEAD packets back to back. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recv.h"

/* ------------------------------------------------------------ files */

/* A source that is not [host]:port names a file: a pcap capture (as the pcap transport
 * or tcpdump writes; UDP payloads in Ethernet, Linux cooked or raw IP frames) or SPEAD
 * packets back to back (as the bytes transport or a file-writing plugin produces). */
int spct_rx_open_file(struct spct_rx *rx, size_t index, const char *path)
{
    struct spct_rx_source *s = spct_rx_add_source(rx);
    if (!s)
        return -1;
    s->kind = SRC_FILE;
    s->index = index;
    snprintf(s->name, sizeof s->name, "%s", path);
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        fprintf(rx->err, RECV_PROG ": %s: %s\n", path, strerror(errno));
        return -1;
    }
    s->cap = (size_t)rx->o->packet + (1u << 20);
    s->buf = malloc(s->cap);
    if (!s->buf)
        return -1;
    uint8_t magic[4];
    ssize_t n = pread(s->fd, magic, 4, 0);
    uint32_t be = n == 4 ? (uint32_t)magic[0] << 24 | (uint32_t)magic[1] << 16 |
                               (uint32_t)magic[2] << 8 | magic[3]
                         : 0;
    uint32_t le = n == 4 ? (uint32_t)magic[3] << 24 | (uint32_t)magic[2] << 16 |
                               (uint32_t)magic[1] << 8 | magic[0]
                         : 0;
    if (be == 0xa1b2c3d4u || be == 0xa1b23c4du) {
        s->pcap = 1;
        s->pcap_swapped = false; /* fields big-endian */
    } else if (le == 0xa1b2c3d4u || le == 0xa1b23c4du) {
        s->pcap = 1;
        s->pcap_swapped = true; /* fields little-endian */
    } else if (n >= 1 && magic[0] == 0x53) {
        s->pcap = 0;
    } else if (n == 0) {
        s->pcap = 0; /* empty: nothing to read */
    } else {
        fprintf(rx->err, RECV_PROG ": %s: neither a pcap capture nor SPEAD packets\n", path);
        return -1;
    }
    return spct_rx_make_decoder(rx, s);
}

static uint32_t pcap_u32(const struct spct_rx_source *s, const uint8_t *p)
{
    if (s->pcap_swapped)
        return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The UDP payload of a captured frame, or NULL when the frame is not an unfragmented
 * IPv4/IPv6 UDP datagram. */
static const uint8_t *frame_payload(const struct spct_rx_source *s, const uint8_t *f, size_t len,
                                    size_t *out_len)
{
    size_t off = 0;
    unsigned proto = 0;
    switch (s->linktype) {
    case 1: /* Ethernet, with at most one VLAN tag */
        if (len < 14)
            return NULL;
        proto = (unsigned)f[12] << 8 | f[13];
        off = 14;
        if (proto == 0x8100 && len >= 18) {
            proto = (unsigned)f[16] << 8 | f[17];
            off = 18;
        }
        break;
    case 113: /* Linux cooked capture */
        if (len < 16)
            return NULL;
        proto = (unsigned)f[14] << 8 | f[15];
        off = 16;
        break;
    case 101: case 228: case 229: /* raw IP */
        if (len < 1)
            return NULL;
        proto = (f[0] >> 4) == 6 ? 0x86dd : 0x0800;
        break;
    default:
        return NULL;
    }
    const uint8_t *ip = f + off;
    size_t ip_len = len - off, hl;
    if (proto == 0x0800) {
        if (ip_len < 20 || (ip[0] >> 4) != 4 || ip[9] != 17)
            return NULL;
        if (((unsigned)(ip[6] & 0x3f) << 8 | ip[7]) != 0)
            return NULL; /* a fragment */
        hl = (size_t)(ip[0] & 0x0f) * 4;
    } else if (proto == 0x86dd) {
        if (ip_len < 40 || ip[6] != 17)
            return NULL;
        hl = 40;
    } else {
        return NULL;
    }
    if (hl < 20 || ip_len < hl + 8)
        return NULL;
    const uint8_t *udp = ip + hl;
    size_t udp_len = (size_t)udp[4] << 8 | udp[5];
    if (udp_len < 8 || udp_len > ip_len - hl)
        return NULL;
    *out_len = udp_len - 8;
    return udp + 8;
}

/* Consumes the whole records in a pcap file's buffer. Returns -1 on a broken file. */
static int parse_pcap(struct spct_rx *rx, struct spct_rx_source *s)
{
    size_t off = 0;
    if (!s->header_done) {
        if (s->len < 24)
            return 0;
        s->linktype = pcap_u32(s, s->buf + 20) & 0xffff;
        if (s->linktype != 1 && s->linktype != 113 && s->linktype != 101 &&
            s->linktype != 228 && s->linktype != 229) {
            fprintf(rx->err, RECV_PROG ": %s: unsupported pcap link type %" PRIu32 "\n", s->name,
                    s->linktype);
            return -1;
        }
        s->header_done = true;
        off = 24;
    }
    while (s->len - off >= 16 && !spct_rx_finished(rx)) {
        size_t incl = pcap_u32(s, s->buf + off + 8);
        if (incl > s->cap - 16) {
            fprintf(rx->err, RECV_PROG ": %s: a %zu-byte record is larger than --packet allows\n",
                    s->name, incl);
            return -1;
        }
        if (s->len - off - 16 < incl)
            break;
        size_t plen;
        const uint8_t *payload = frame_payload(s, s->buf + off + 16, incl, &plen);
        if (payload) {
            rx->r.packets++;
            int rc = spc_decoder_add_packet(s->dec, payload, plen, NULL);
            if (rc < 0)
                spct_rx_bad_packet(rx, s, rc, NULL);
            spct_rx_drain(rx, s);
        }
        off += 16 + incl;
    }
    memmove(s->buf, s->buf + off, s->len - off);
    s->len -= off;
    return 0;
}

void spct_rx_read_file(struct spct_rx *rx, struct spct_rx_source *s)
{
    while (!s->done && !spct_rx_finished(rx) && !spct_interrupted) {
        ssize_t n = read(s->fd, s->buf + s->len, s->cap - s->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                fprintf(rx->err, RECV_PROG ": %s: %s\n", s->name, strerror(errno));
            else if (s->pcap && s->len && rx->complaints_bad++ < RECV_MAX_COMPLAINTS)
                fprintf(rx->err, RECV_PROG ": %s: ends inside a record\n", s->name);
            if (s->pcap)
                s->len = 0;
            spct_rx_end_source(rx, s);
            return;
        }
        spct_rx_note_packet(rx);
        s->len += (size_t)n;
        if (s->pcap) {
            if (parse_pcap(rx, s) < 0)
                s->done = true;
        } else {
            spct_rx_parse_stream(rx, s);
        }
        if (s->done)
            spct_rx_end_source(rx, s);
    }
}

