/* speadcast-recv's file sources: pcap captures and files of SPEAD packets back to back. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recv.h"

/* ------------------------------------------------------------ files */

/* A source that is not [host]:port names a file: a pcap capture (as the pcap transport
 * or tcpdump writes; UDP payloads in Ethernet, Linux cooked or raw IP frames) or SPEAD
 * packets back to back (as the bytes transport or a file-writing plugin produces). A
 * regular file is read through before the main loop; anything else (a pipe, a FIFO, a
 * device) is opened without blocking and read as data comes, so --timeout holds while a
 * FIFO waits for its writer. Which format it is shows in the first bytes read. */
int spct_rx_open_file(struct spct_rx *rx, size_t index, const char *path)
{
    struct spct_rx_source *s = spct_rx_add_source(rx, SRC_FILE, index, path);
    if (!s)
        return -1;
    s->pcap = -1; /* not known yet */
    s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (s->fd < 0 || fstat(s->fd, &st) < 0) {
        fprintf(rx->err, RECV_PROG ": %s: %s\n", path, strerror(errno));
        return -1;
    }
    s->polled = !S_ISREG(st.st_mode);
    if (!s->polled)
        fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) & ~O_NONBLOCK);
    s->cap = (size_t)rx->o->packet + (1u << 20);
    s->buf = malloc(s->cap);
    if (!s->buf)
        return -1;
    return spct_rx_make_decoder(rx, s);
}

/* Tells the format from the first bytes: 0 known, 1 wait for more, -1 neither (said). */
static int detect_format(struct spct_rx *rx, struct spct_rx_source *s, bool at_end)
{
    if (s->pcap >= 0)
        return 0;
    if (s->len < 4 && !at_end)
        return 1;
    const uint8_t *m = s->buf;
    uint32_t be = s->len >= 4 ? (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 |
                                    (uint32_t)m[2] << 8 | m[3]
                              : 0;
    uint32_t le = s->len >= 4 ? (uint32_t)m[3] << 24 | (uint32_t)m[2] << 16 |
                                    (uint32_t)m[1] << 8 | m[0]
                              : 0;
    if (be == 0xa1b2c3d4u || be == 0xa1b23c4du) {
        s->pcap = 1;
        s->pcap_swapped = false; /* fields big-endian */
    } else if (le == 0xa1b2c3d4u || le == 0xa1b23c4du) {
        s->pcap = 1;
        s->pcap_swapped = true; /* fields little-endian */
    } else if (s->len == 0 || m[0] == 0x53) {
        s->pcap = 0; /* SPEAD packets (or empty: nothing to read) */
    } else {
        fprintf(rx->err, RECV_PROG ": %s: neither a pcap capture nor SPEAD packets\n", s->name);
        return -1;
    }
    return 0;
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

/* Reads what there is: a regular file to its end, a polled one until it would block. */
void spct_rx_read_file(struct spct_rx *rx, struct spct_rx_source *s)
{
    while (!s->done && !spct_rx_finished(rx) && !spct_interrupted) {
        ssize_t n = read(s->fd, s->buf + s->len, s->cap - s->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* polled: the main loop calls again when there is more */
        bool broken = false;
        if (n > 0) {
            spct_rx_note_packet(rx);
            s->len += (size_t)n;
        }
        int fmt = detect_format(rx, s, n <= 0);
        if (fmt < 0)
            broken = true;
        else if (fmt == 0 && s->pcap)
            broken = parse_pcap(rx, s) < 0;
        else if (fmt == 0)
            spct_rx_parse_stream(rx, s);
        if (n < 0) {
            fprintf(rx->err, RECV_PROG ": %s: %s\n", s->name, strerror(errno));
            broken = true;
        } else if (n == 0 && s->pcap > 0 && s->len && !broken &&
                   rx->complaints_bad++ < RECV_MAX_COMPLAINTS) {
            fprintf(rx->err, RECV_PROG ": %s: ends inside a record\n", s->name);
        }
        if (broken) {
            rx->source_failed = true;
            s->len = 0; /* said why already: no "ended inside a packet" as well */
        }
        if (n <= 0 || broken || s->done) {
            if (s->pcap > 0)
                s->len = 0; /* a partial record was reported above */
            spct_rx_end_source(rx, s);
            return;
        }
    }
}
