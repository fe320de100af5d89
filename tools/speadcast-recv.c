/* speadcast-recv: receives SPEAD streams (UDP, TCP, pcap or packet files, or in-process
 * queues), reassembles and decodes the heaps, prints them, checks the
 * speadcast-send/spead2_send --verify pattern and counts complete, incomplete, corrupt
 * and missing heaps.
 *
 * Each source (UDP socket, TCP connection, file, inproc queue) has its own decoder, as
 * spead2_recv gives each source its own stream; all decoders share one memory budget
 * (--max-memory). The run ends when the expected number of stop heaps has arrived (one
 * per source unless --stops says otherwise), after --heaps heaps, at --timeout /
 * --idle-timeout, or on SIGINT; heaps still incomplete then are counted as incomplete.
 * With --verify, missing heaps are the cnts of the sender's sequence (recv-verify.c)
 * before the stop heap's that never arrived.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recv.h"

struct spct_rx_source *spct_rx_add_source(struct spct_rx *rx, enum spct_rx_kind kind,
                                          size_t index, const char *name)
{
    if (rx->n_src == rx->cap_src) {
        size_t cap = rx->cap_src ? rx->cap_src * 2 : 8;
        struct spct_rx_source *s = realloc(rx->src, cap * sizeof *s);
        if (!s)
            return NULL;
        rx->src = s;
        rx->cap_src = cap;
    }
    struct spct_rx_source *s = &rx->src[rx->n_src++];
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->kind = kind;
    s->index = index;
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

void spct_rx_close_source(struct spct_rx_source *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    spc_decoder_destroy(s->dec);
    s->dec = NULL;
    spc_inproc_receiver_destroy(s->ir);
    s->ir = NULL;
    free(s->buf);
    s->buf = NULL;
}

static void receiver_free(struct spct_rx *rx)
{
    for (size_t i = 0; i < rx->n_src; i++)
        spct_rx_close_source(&rx->src[i]);
    free(rx->src);
    spct_rx_free_descs(rx);
    free(rx->udp_bufs);
    spct_rx_seq_free(&rx->seq);
    spc_decoder_budget_destroy(rx->budget); /* after every decoder that used it */
}

/* ------------------------------------------------------------ heaps */

void spct_rx_handle_heap(struct spct_rx *rx, struct spct_rx_source *s, struct spc_decoded_heap *h)
{
    const struct spct_recv_opts *o = rx->o;
    double at = spct_now() - rx->start;
    if (h->has_stop) {
        rx->r.stops++;
        if (o->verify)
            spct_rx_seq_stop(&rx->seq, h->cnt);
        spct_rx_print_stop(rx, s, h, at);
        spc_decoded_heap_free(h);
        return;
    }
    int verdict = 0; /* 1 verified, 0 not checked, -1 corrupt */
    char why[512] = "";
    enum spct_rx_seq_kind kind = o->verify ? spct_rx_seq_data(&rx->seq, h->cnt, h->complete)
                                           : SEQ_NEW;
    if (kind == SEQ_LATE_PACKETS) {
        /* Stray copies of packets of a heap that arrived whole: no heap of their own. */
        rx->r.duplicate_packets += h->n_packets;
        spc_decoded_heap_free(h);
        return;
    }
    rx->r.heaps++;
    if (kind == SEQ_DUPLICATE) {
        rx->r.duplicates++;
        snprintf(why, sizeof why, "heap %" PRIu64 " arrived before", h->cnt);
    } else if (kind == SEQ_UNEXPECTED) {
        rx->r.unexpected++;
        snprintf(why, sizeof why, "cnt %" PRIu64 " is not in the sequence (--first-cnt %" PRIu64
                 "%s%s)", h->cnt, o->first_cnt, o->substream ? ", --substream " : "",
                 o->substream ? o->substream : "");
    }
    if (why[0] && rx->complaints_corrupt++ < RECV_MAX_COMPLAINTS)
        fprintf(rx->err, RECV_PROG ": %s\n", why);
    if (!h->complete) {
        rx->r.incomplete++;
    } else {
        rx->r.complete++;
        rx->r.bytes += h->heap_size;
        for (size_t i = 0; i < h->n_items; i++)
            if (h->items[i].id == SPC_ID_DESCRIPTOR) {
                struct spc_descriptor_info *info;
                int rc = spc_descriptor_parse(&h->items[i], &h->flavour, &info);
                if (rc == 0)
                    spct_rx_keep_desc(rx, info);
                else {
                    verdict = -1;
                    snprintf(why, sizeof why, "bad descriptor: %s", spc_strerror(rc));
                }
            }
        if (o->verify && verdict == 0)
            verdict = spct_rx_verify_heap(rx, h, why, sizeof why);
        if (verdict < 0)
            rx->r.corrupt++;
        else if (verdict > 0)
            rx->r.verified++;
    }
    spct_rx_print_heap(rx, s, h, at, verdict, why);
    if (verdict < 0 && rx->complaints_corrupt++ < RECV_MAX_COMPLAINTS)
        fprintf(rx->err, RECV_PROG ": heap %" PRIu64 " is corrupt: %s\n", h->cnt, why);
    else if (!h->complete && o->verify && !o->quiet && !o->json &&
             rx->complaints_corrupt++ < RECV_MAX_COMPLAINTS)
        fprintf(rx->err, RECV_PROG ": heap %" PRIu64 " is incomplete (%" PRIu64 " of %" PRIu64
                " bytes)\n", h->cnt, h->received, h->heap_size);
    spc_decoded_heap_free(h);
}

void spct_rx_decoder_config(const struct spct_rx *rx, struct spc_decoder_config *dc)
{
    *dc = SPC_DECODER_CONFIG_DEFAULT;
    dc->max_heap_size = (size_t)rx->o->max_heap_size;
    dc->max_live_heaps = (size_t)rx->o->concurrent_heaps;
    dc->bug_compat = rx->o->pyspead ? SPC_BUG_COMPAT_PYSPEAD_0_5_2 : 0;
    dc->budget = rx->budget;
}

int spct_rx_make_decoder(struct spct_rx *rx, struct spct_rx_source *s)
{
    struct spc_decoder_config dc;
    spct_rx_decoder_config(rx, &dc);
    int rc = spc_decoder_create(&s->dec, &dc);
    if (rc < 0)
        fprintf(rx->err, RECV_PROG ": cannot create a decoder: %s\n", spc_strerror(rc));
    return rc;
}

/* Parses whole packets out of a byte stream's buffer (TCP connection or packet file). A
 * packet the decoder cannot parse at all leaves no way to find the next one: the source
 * is closed. */
void spct_rx_parse_stream(struct spct_rx *rx, struct spct_rx_source *s)
{
    size_t off = 0;
    while (off < s->len && !spct_rx_finished(rx)) {
        size_t consumed = 0;
        int rc = spc_decoder_add_packet(s->dec, s->buf + off, s->len - off, &consumed);
        if (rc == 0 || consumed > 0) {
            rx->r.packets++;
            if (rc < 0)
                spct_rx_bad_packet(rx, s, rc, NULL);
            off += consumed;
            spct_rx_drain(rx, s);
            continue;
        }
        if (rc == -SPC_ETRUNCATED && s->len - off < s->cap)
            break; /* the rest of the packet is still on its way */
        if (rc == -SPC_ETRUNCATED) {
            char what[128];
            snprintf(what, sizeof what, "packet larger than --packet %" PRIu64, rx->o->packet);
            spct_rx_bad_packet(rx, s, rc, what);
        } else {
            spct_rx_bad_packet(rx, s, rc, NULL);
        }
        fprintf(rx->err, RECV_PROG ": %s: cannot find the next packet; giving up on it\n", s->name);
        off = s->len;
        s->done = true;
    }
    memmove(s->buf, s->buf + off, s->len - off);
    s->len -= off;
}

void spct_rx_end_source(struct spct_rx *rx, struct spct_rx_source *s)
{
    if (s->dec) {
        spc_decoder_flush(s->dec);
        spct_rx_drain(rx, s);
    }
    if (s->len && rx->complaints_bad++ < RECV_MAX_COMPLAINTS)
        fprintf(rx->err, RECV_PROG ": %s: ended inside a packet (%zu bytes left)\n", s->name, s->len);
    if (s->counted) {
        rx->n_conns--;
        s->counted = false;
    }
    spct_rx_close_source(s);
    s->done = true;
}

void spct_rx_drain(struct spct_rx *rx, struct spct_rx_source *s)
{
    struct spc_decoded_heap *h;
    while (spc_decoder_pop(s->dec, &h) == 1)
        spct_rx_handle_heap(rx, s, h);
}

void spct_rx_note_packet(struct spct_rx *rx)
{
    double now = spct_now();
    if (!rx->got_packet) {
        rx->got_packet = true;
        rx->first_packet = now;
    }
    rx->last_packet = now;
}

void spct_rx_bad_packet(struct spct_rx *rx, struct spct_rx_source *s, int rc, const char *what)
{
    rx->r.bad_packets++;
    if (rc == -ENOBUFS) {
        rx->r.memory_refused++; /* summed up at the end, not one message each */
        return;
    }
    if (rx->complaints_bad++ < RECV_MAX_COMPLAINTS)
        fprintf(rx->err, RECV_PROG ": bad packet from %s: %s\n", s->name,
                what ? what : spc_strerror(rc));
}

/* ------------------------------------------------------------ main loop */

bool spct_rx_finished(const struct spct_rx *rx)
{
    if (rx->o->heaps >= 0 && rx->r.heaps >= (uint64_t)rx->o->heaps)
        return true;
    return rx->stops_expected > 0 && rx->r.stops >= rx->stops_expected;
}

/* Says where each source listens (stderr, --ready-file, the ready callback). Returns -1
 * when --ready-file could not be written. */
static int announce(struct spct_rx *rx)
{
    size_t n = 0;
    struct sockaddr_storage *addrs = calloc(rx->n_src ? rx->n_src : 1, sizeof *addrs);
    char *text = calloc(rx->n_src ? rx->n_src : 1, 320);
    size_t off = 0;
    for (size_t i = 0; addrs && text && i < rx->n_src; i++) {
        struct spct_rx_source *s = &rx->src[i];
        char line[300];
        if (s->kind == SRC_INPROC || s->kind == SRC_FILE) {
            snprintf(line, sizeof line, "%s", s->name);
        } else {
            socklen_t len = sizeof addrs[n];
            getsockname(s->fd, (struct sockaddr *)&addrs[n], &len);
            spct_format_sockaddr((struct sockaddr *)&addrs[n], line, sizeof line);
            snprintf(s->name, sizeof s->name, "%s", line);
            n++;
        }
        off += (size_t)snprintf(text + off, 320, "%s\n", line);
        if (!rx->o->quiet)
            fprintf(rx->err, RECV_PROG ": %s %s%s\n", s->kind == SRC_FILE ? "reading" : "listening on",
                    rx->o->tcp && s->kind == SRC_TCP_LISTEN ? "tcp " : "", line);
    }
    int status = 0;
    if (rx->o->ready_file && text) {
        int rc = spct_write_file_atomic(rx->o->ready_file, text);
        if (rc < 0) {
            fprintf(rx->err, RECV_PROG ": --ready-file %s: %s\n", rx->o->ready_file,
                    rc == -SPCT_ENOTREG ? "is not a regular file (not replaced)" : strerror(-rc));
            status = -1;
        }
    }
    if (rx->o->ready && status == 0)
        rx->o->ready(rx->o->ready_user, addrs, n);
    free(addrs);
    free(text);
    return status;
}

int spct_recv_run(const struct spct_recv_opts *o, struct spct_recv_result *res, FILE *out,
                  FILE *err)
{
    struct spct_rx rx;
    memset(&rx, 0, sizeof rx);
    rx.o = o;
    rx.out = out;
    rx.err = err;
    rx.start = spct_now();
    rx.stops_expected = o->stops >= 0 ? (uint64_t)o->stops : o->n_sources;
    spct_rx_seq_init(&rx.seq, o->first_cnt, o->substream_index, o->substream_count);
    int status = SPCT_EXIT_OK;
    int brc = spc_decoder_budget_create(&rx.budget, (size_t)o->max_memory);
    if (brc < 0) {
        fprintf(err, RECV_PROG ": --max-memory: %s\n", spc_strerror(brc));
        return SPCT_EXIT_FAIL;
    }
    if (!o->tcp && !o->inproc) {
        rx.udp_bufs = malloc(RECV_UDP_BATCH * ((size_t)o->packet + 1));
        if (!rx.udp_bufs) {
            fprintf(err, RECV_PROG ": out of memory\n");
            receiver_free(&rx);
            return SPCT_EXIT_FAIL;
        }
    }
    for (size_t i = 0; i < o->n_sources; i++) {
        struct spct_endpoint ep;
        char why[512];
        bool file = !o->inproc &&
                    spct_parse_endpoint(o->sources[i], true, &ep, why, sizeof why) < 0;
        int rc = o->inproc ? spct_rx_open_inproc(&rx, i, o->sources[i])
                 : file    ? spct_rx_open_file(&rx, i, o->sources[i])
                 : o->tcp  ? spct_rx_open_tcp(&rx, i, o->sources[i])
                           : spct_rx_open_udp(&rx, i, o->sources[i]);
        if (rc == 0 && rx.src[rx.n_src - 1].kind == SRC_UDP)
            rc = spct_rx_make_decoder(&rx, &rx.src[rx.n_src - 1]);
        if (rc < 0) {
            receiver_free(&rx);
            return SPCT_EXIT_FAIL;
        }
    }
    if (announce(&rx) < 0) {
        receiver_free(&rx);
        return SPCT_EXIT_FAIL;
    }
    for (size_t i = 0; i < rx.n_src; i++)
        if (rx.src[i].kind == SRC_FILE && !rx.src[i].polled)
            spct_rx_read_file(&rx, &rx.src[i]);

    struct pollfd *pfd = NULL;
    size_t cap_pfd = 0;
    while (!spct_rx_finished(&rx)) {
        double now = spct_now();
        if (spct_interrupted || (o->cancel && atomic_load(o->cancel)) ||
            (o->timeout > 0 && now - rx.start >= o->timeout) ||
            (o->idle_timeout > 0 && rx.got_packet && now - rx.last_packet >= o->idle_timeout)) {
            rx.r.timed_out = true;
            break;
        }
        if (cap_pfd < rx.n_src) {
            struct pollfd *p = realloc(pfd, rx.n_src * 2 * sizeof *p);
            if (!p)
                break;
            pfd = p;
            cap_pfd = rx.n_src * 2;
        }
        size_t n_src = rx.n_src, live = 0;
        for (size_t i = 0; i < n_src; i++) {
            struct spct_rx_source *s = &rx.src[i];
            bool idle = s->done || (s->kind == SRC_FILE && !s->polled) ||
                        (s->kind == SRC_TCP_LISTEN && now < s->paused_until);
            pfd[i].fd = idle                     ? -1
                        : s->kind == SRC_INPROC ? spc_inproc_receiver_fd(s->ir)
                                                : s->fd;
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
            live += !s->done && s->kind != SRC_TCP_LISTEN;
        }
        if (live == 0 && !o->tcp)
            break; /* every file read, every inproc queue stopped and drained */
        int n = poll(pfd, n_src, 50);
        if (n <= 0)
            continue;
        for (size_t i = 0; i < n_src && !spct_rx_finished(&rx); i++) {
            if (!pfd[i].revents)
                continue;
            struct spct_rx_source *s = &rx.src[i];
            switch (s->kind) {
            case SRC_UDP: spct_rx_read_udp(&rx, s); break;
            case SRC_TCP_LISTEN: spct_rx_accept_tcp(&rx, i); break;
            case SRC_TCP_CONN: spct_rx_read_tcp(&rx, s); break;
            case SRC_INPROC: spct_rx_read_inproc(&rx, s); break;
            case SRC_FILE: spct_rx_read_file(&rx, s); break; /* polled ones only */
            }
        }
    }
    free(pfd);
    rx.r.finished = spct_rx_finished(&rx);
    /* Heaps still being reassembled are given up and count as incomplete, unless the
     * --heaps limit ended the run (heaps beyond it are not counted at all). An inproc
     * queue is stopped so its receiver hands them over. */
    bool limit = o->heaps >= 0 && rx.r.heaps >= (uint64_t)o->heaps;
    for (size_t i = 0; i < rx.n_src && !limit; i++) {
        struct spct_rx_source *s = &rx.src[i];
        if (s->dec) {
            spc_decoder_flush(s->dec);
            spct_rx_drain(&rx, s);
        }
        if (s->ir && !s->done) {
            spc_inproc_queue_stop(spc_inproc_receiver_queue(s->ir));
            struct spc_decoded_heap *h;
            while (spc_inproc_receiver_next(s->ir, &h, 0) == 0)
                spct_rx_handle_heap(&rx, s, h);
        }
    }
    for (size_t i = 0; i < rx.n_src; i++) {
        struct spct_rx_source *s = &rx.src[i];
        if (s->ir) {
            struct spc_decoder_stats st = SPC_DECODER_STATS_INIT;
            spc_inproc_receiver_stats(s->ir, &st);
            rx.r.packets += st.packets + st.bad_packets;
            rx.r.bad_packets += st.bad_packets;
            rx.r.memory_refused += st.memory_refused;
        }
    }
    rx.r.seconds = rx.got_packet ? rx.last_packet - rx.first_packet : 0.0;
    if (rx.r.memory_refused)
        fprintf(err, RECV_PROG ": %" PRIu64 " packets refused: their heaps would have taken "
                "the heaps being reassembled past --max-memory %" PRIu64 " bytes\n",
                rx.r.memory_refused, o->max_memory);
    bool ok = true;
    if (o->verify) {
        uint64_t beyond;
        spct_rx_seq_count(&rx.seq, &rx.r.missing, &beyond);
        rx.r.unexpected += beyond;
        if (beyond)
            fprintf(err, RECV_PROG ": %" PRIu64 " heaps came with cnts at or after the stop "
                    "heap's %" PRIu64 "\n", beyond, rx.seq.end);
        if (rx.r.heaps == 0)
            fprintf(err, RECV_PROG ": no data heap arrived: nothing was verified\n");
        ok = rx.r.heaps > 0 && rx.r.incomplete == 0 && rx.r.corrupt == 0 &&
             rx.r.missing == 0 && rx.r.duplicates == 0 && rx.r.unexpected == 0 &&
             rx.r.bad_packets == 0 && rx.r.finished;
    }
    if (!ok || rx.source_failed)
        status = SPCT_EXIT_FAIL;
    spct_rx_print_summary(&rx, ok);
    if (res)
        *res = rx.r;
    receiver_free(&rx);
    return status;
}

int spct_recv_main(int argc, char **argv, FILE *out, FILE *err)
{
    struct spct_recv_opts o;
    spct_recv_defaults(&o);
    int rc = spct_recv_parse(&o, argc, argv, out, err);
    if (rc == 0)
        rc = spct_recv_run(&o, NULL, out, err);
    else if (rc == 1)
        rc = SPCT_EXIT_OK;
    spct_recv_opts_free(&o);
    return rc;
}
