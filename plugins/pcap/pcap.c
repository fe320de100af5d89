/* The pcap transport: each packet becomes an Ethernet/IPv4/UDP frame (built by the
 * core's frame code, ABI minor 1) recorded in a classic pcap file (microsecond
 * timestamps, LINKTYPE_ETHERNET), for inspection with tcpdump/Wireshark or replay.
 *
 * Records are written with writev straight from the packets' pieces, so a status of 0
 * means the record reached the file. Invariant: the file always ends at a record
 * boundary (good_size): a write that fails part-way is cut back with ftruncate, so one
 * failed packet never corrupts the records after it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "speadcast/transport.h"
#include "spcu_net.h"

#define PCAP_MAGIC 0xa1b2c3d4u   /* microsecond timestamps, written in host order */
#define PCAP_SNAPLEN 262144u
#define PCAP_LINKTYPE_ETHERNET 1u
#define PCAP_REC_LEN 16
#define PCAP_CHUNK 128           /* packets per writev */
#define PCAP_MAX_IOV 1024

struct pcap_options {
    const char *path;
    struct spc_endpoint_list endpoints;
    const char *source_address;
    uint64_t source_port;
    const char *source_mac;
    const char *destination_mac;
    uint64_t ttl;
};

struct pcap {
    struct spc_transport base;
    int fd;
    const char *path;                   /* borrowed until close */
    const struct spc_endpoint_list *eps;
    struct spc_frame_params *flows;     /* one per substream */
    uint16_t ip_id;
    off_t good_size;                    /* bytes of complete records (and the header) */
    uint8_t heads[PCAP_CHUNK][PCAP_REC_LEN + SPC_FRAME_HEADER_LEN];
    struct iovec iov[PCAP_MAX_IOV];
};

static const struct spc_option pcap_option_table[] = {
    {SPC_OPTION_INIT, .name = "path", .type = SPC_OPT_STRING,
     .offset = offsetof(struct pcap_options, path), .flags = SPC_OPT_REQUIRED, .min_count = 1,
     .help = "pcap file to write (created or truncated at open)"},
    {SPC_OPTION_INIT, .name = "endpoints", .type = SPC_OPT_ENDPOINTS,
     .offset = offsetof(struct pcap_options, endpoints), .flags = SPC_OPT_REQUIRED | SPC_OPT_IPV4,
     .min_count = 1,
     .help = "destination of each substream's frames, \"a.b.c.d:port\" (the frames are "
             "IPv4: no names, no IPv6)"},
    {SPC_OPTION_INIT, .name = "source_address", .type = SPC_OPT_STRING,
     .offset = offsetof(struct pcap_options, source_address),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_IPV4, .def.s = "127.0.0.1", .min_count = 1,
     .help = "source IPv4 address of the frames, \"a.b.c.d\""},
    {SPC_OPTION_INIT, .name = "source_port", .type = SPC_OPT_UINT,
     .offset = offsetof(struct pcap_options, source_port),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MAX, .def.u = 49152, .max.u = 65535,
     .help = "source UDP port of the frames"},
    {SPC_OPTION_INIT, .name = "source_mac", .type = SPC_OPT_STRING,
     .offset = offsetof(struct pcap_options, source_mac), .flags = SPC_OPT_DEFAULT,
     .def.s = "02:00:00:00:00:01", .min_count = 17, .max_count = 17,
     .help = "source Ethernet address, \"aa:bb:cc:dd:ee:ff\""},
    {SPC_OPTION_INIT, .name = "destination_mac", .type = SPC_OPT_STRING,
     .offset = offsetof(struct pcap_options, destination_mac), .min_count = 17,
     .max_count = 17,
     .help = "destination Ethernet address for unicast endpoints (default "
             "00:00:00:00:00:00); multicast endpoints always use 01:00:5e + the low 23 bits "
             "of the group"},
    {SPC_OPTION_INIT, .name = "ttl", .type = SPC_OPT_UINT,
     .offset = offsetof(struct pcap_options, ttl),
     .flags = SPC_OPT_DEFAULT | SPC_OPT_MIN | SPC_OPT_MAX, .def.u = 64, .min.u = 1,
     .max.u = 255,
     .help = "IPv4 time-to-live of the frames"},
};

/* Resolves host to an IPv4 address (network order bytes). */
static int resolve_v4(struct pcap *pc, const char *what, const char *host, uint8_t out[4])
{
    const char *why = "";
    int rc = spcu_resolve_ipv4(host, out, &why);
    if (rc < 0)
        pc->base.svc->set_error(&pc->base, "cannot resolve %s \"%s\" to an IPv4 address "
                                "(pcap frames are IPv4): %s", what, host, why);
    return rc;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static void pcap_release(struct pcap *pc)
{
    if (pc->fd >= 0)
        close(pc->fd);
    pc->fd = -1;
    free(pc->flows);
    pc->flows = NULL;
}

static int pcap_open(struct spc_transport *t, const void *options,
                     const struct spc_transport_params *params)
{
    (void)params;
    struct pcap *pc = spc_container_of(t, struct pcap, base);
    const struct pcap_options *o = options;
    pc->fd = -1;
    pc->path = o->path;
    pc->eps = &o->endpoints;
    if (!SPC_HAS_FIELD(t->svc, struct spc_core_services, mac_parse)) {
        t->svc->set_error(t, "the core (transport ABI minor %u) cannot build frames: "
                             "minor 1 or later is needed", (unsigned)t->svc->abi_minor);
        return -SPC_ENOTSUP;
    }
    if (o->endpoints.n == 0) {
        t->svc->set_error(t, "endpoints is empty: give one destination per substream");
        return -SPC_ECONFIG;
    }
    struct spc_frame_params base = {SPC_FRAME_PARAMS_INIT, .src_port = (uint16_t)o->source_port,
                                    .ttl = (uint8_t)o->ttl};
    if (t->svc->mac_parse(o->source_mac, base.src_mac) < 0) {
        t->svc->set_error(t, "source_mac \"%s\" is not of the form aa:bb:cc:dd:ee:ff",
                          o->source_mac);
        return -SPC_ECONFIG;
    }
    uint8_t unicast_mac[6] = {0};
    if (o->destination_mac && t->svc->mac_parse(o->destination_mac, unicast_mac) < 0) {
        t->svc->set_error(t, "destination_mac \"%s\" is not of the form aa:bb:cc:dd:ee:ff",
                          o->destination_mac);
        return -SPC_ECONFIG;
    }
    int rc = resolve_v4(pc, "source_address", o->source_address, base.src_ip);
    if (rc < 0)
        return rc;
    pc->flows = calloc(o->endpoints.n, sizeof *pc->flows);
    if (!pc->flows) {
        t->svc->set_error(t, "out of memory for %zu endpoints", o->endpoints.n);
        return -ENOMEM;
    }
    for (size_t i = 0; i < o->endpoints.n; i++) {
        const struct spc_endpoint *ep = o->endpoints.items[i];
        struct spc_frame_params *f = &pc->flows[i];
        *f = base;
        char what[32];
        snprintf(what, sizeof what, "endpoints[%zu]", i);
        rc = resolve_v4(pc, what, ep->host, f->dst_ip);
        if (rc < 0) {
            pcap_release(pc);
            return rc;
        }
        f->dst_port = (uint16_t)ep->port;
        if (t->svc->frame_multicast_mac(f->dst_ip, f->dst_mac) < 0)
            memcpy(f->dst_mac, unicast_mac, 6);
    }

    pc->fd = open(o->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (pc->fd < 0) {
        rc = -errno;
        t->svc->set_error(t, "cannot create %s: %s", o->path, strerror(-rc));
        pcap_release(pc);
        return rc;
    }
    uint32_t hdr[6] = {PCAP_MAGIC, 2u | 4u << 16, 0, 0, PCAP_SNAPLEN, PCAP_LINKTYPE_ETHERNET};
    /* version 2.4: two uint16 fields, major first, in host order */
    uint16_t ver[2] = {2, 4};
    memcpy(&hdr[1], ver, sizeof ver);
    rc = write_all(pc->fd, hdr, sizeof hdr);
    if (rc < 0) {
        t->svc->set_error(t, "writing the pcap header to %s: %s", o->path, strerror(-rc));
        pcap_release(pc);
        return rc;
    }
    pc->good_size = (off_t)sizeof hdr;
    t->n_substreams = (uint32_t)o->endpoints.n;
    return 0;
}

static void pcap_close(struct spc_transport *t)
{
    pcap_release(spc_container_of(t, struct pcap, base));
}

/* Writes the n records whose pieces are pc->iov[0, n_iov); record k is packet idx[k],
 * rec_len[k] bytes long. Sets the status of each record written. Returns n, or, after a
 * write error, the index of the failed record + 1 (its status set to the error; the file
 * cut back to good_size), so the caller resumes after it. */
static size_t write_chunk(struct pcap *pc, struct spc_tx_batch *b, const size_t *idx,
                          const size_t *rec_len, size_t n, size_t n_iov)
{
    struct iovec *iov = pc->iov;
    size_t done = 0;   /* records fully written */
    size_t in_rec = 0; /* bytes of record `done` written */
    while (done < n) {
        ssize_t w = writev(pc->fd, iov, (int)n_iov);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            if (in_rec && ftruncate(pc->fd, pc->good_size) == 0)
                lseek(pc->fd, pc->good_size, SEEK_SET);
            struct spc_tx_packet *p = spc_tx_batch_packet(b, idx[done]);
            p->status = -e;
            pc->base.svc->set_error(&pc->base, "writing a %zu-byte packet to %s: %s", p->size,
                                    pc->path, strerror(e));
            return done + 1;
        }
        size_t left = (size_t)w;
        while (left && done < n) {
            size_t rem = rec_len[done] - in_rec;
            if (left < rem) {
                in_rec += left;
                break;
            }
            left -= rem;
            pc->good_size += (off_t)rec_len[done];
            spc_tx_batch_packet(b, idx[done])->status = 0;
            done++;
            in_rec = 0;
        }
        /* Move the iovec window past the bytes written. */
        size_t adv = (size_t)w;
        while (adv && n_iov) {
            if (adv >= iov->iov_len) {
                adv -= iov->iov_len;
                iov++;
                n_iov--;
            } else {
                iov->iov_base = (char *)iov->iov_base + adv;
                iov->iov_len -= adv;
                adv = 0;
            }
        }
    }
    return n;
}

static int pcap_send(struct spc_transport *t, struct spc_tx_batch *b)
{
    struct pcap *pc = spc_container_of(t, struct pcap, base);
    size_t i = 0;
    while (i < b->n_packets) {
        size_t idx[PCAP_CHUNK], rec_len[PCAP_CHUNK];
        size_t n = 0, n_iov = 0;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        for (; i < b->n_packets && n < PCAP_CHUNK; i++) {
            struct spc_tx_packet *p = spc_tx_batch_packet(b, i);
            if (n_iov + 1 + p->n_iov > PCAP_MAX_IOV) {
                if (n > 0)
                    break;
                p->status = -EMSGSIZE;
                t->svc->set_error(t, "a packet of %u pieces is too fragmented to record",
                                  (unsigned)p->n_iov);
                continue;
            }
            uint8_t *h = pc->heads[n];
            int rc = t->svc->frame_write(&pc->flows[p->substream], p->size, pc->ip_id,
                                         h + PCAP_REC_LEN);
            if (rc < 0) {
                p->status = rc;
                t->svc->set_error(t, "a %zu-byte packet does not fit in an IPv4 UDP frame "
                                  "(at most %d bytes)", p->size, SPC_FRAME_MAX_PAYLOAD);
                continue;
            }
            pc->ip_id++;
            uint32_t frame_len = (uint32_t)(SPC_FRAME_HEADER_LEN + p->size);
            uint32_t rec[4] = {(uint32_t)now.tv_sec, (uint32_t)(now.tv_nsec / 1000), frame_len,
                               frame_len};
            memcpy(h, rec, sizeof rec);
            pc->iov[n_iov].iov_base = h;
            pc->iov[n_iov].iov_len = PCAP_REC_LEN + SPC_FRAME_HEADER_LEN;
            n_iov++;
            for (uint32_t k = 0; k < p->n_iov; k++)
                if (p->iov[k].iov_len)
                    pc->iov[n_iov++] = p->iov[k];
            idx[n] = i;
            rec_len[n] = PCAP_REC_LEN + frame_len;
            n++;
        }
        if (n) {
            size_t handled = write_chunk(pc, b, idx, rec_len, n, n_iov);
            if (handled < n)
                i = idx[handled]; /* after a failed record: go on with the next */
        }
    }
    return 0;
}

static const struct spc_transport_ops pcap_ops = {
    SPC_TRANSPORT_OPS_INIT,
    .open = pcap_open,
    .close = pcap_close,
    .send = pcap_send,
};

static const struct spc_transport_descriptor pcap_descriptor = {
    SPC_TRANSPORT_DESCRIPTOR_INIT,
    .name = "pcap",
    .version = "1.0.0",
    .description = "writes each packet as an Ethernet/IPv4/UDP frame to a pcap file",
    .caps = SPC_TRANSPORT_CAP_RELIABLE,
    .options = pcap_option_table,
    .n_options = sizeof pcap_option_table / sizeof pcap_option_table[0],
    .options_size = sizeof(struct pcap_options),
    .object_size = sizeof(struct pcap),
    .max_substreams = 0,
    .ops = &pcap_ops,
};

SPC_TRANSPORT_DEFINE(pcap_descriptor)
