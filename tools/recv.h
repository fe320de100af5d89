/* speadcast-recv's internals, shared by its files (not installed, not used by the other
 * tools):
 *   speadcast-recv.c  the receiver: sources list, heap accounting, main loop, summary
 *   recv-options.c    options and their checks
 *   recv-print.c      heaps, descriptors and the summary as text or JSON
 *   recv-verify.c     the --verify pattern check and the heap cnt bookkeeping
 *   recv-desc.c       the descriptors kept for naming and sizing items
 *   recv-net.c        UDP sockets, TCP listeners and connections
 *   recv-inproc.c     in-process queues
 *   recv-file.c       pcap captures and packet files
 * Everything runs on the thread that calls spct_recv_run; nothing here is shared. */
#ifndef SPCT_RECV_H
#define SPCT_RECV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "common.h"
#include "speadcast/speadcast.h"

#define RECV_PROG "speadcast-recv"
#define RECV_UDP_BATCH 64
#define RECV_MAX_COMPLAINTS 10 /* detailed messages per kind before going quiet */
#define RECV_FIRST_DATA_ID 0x1000

enum spct_rx_kind { SRC_UDP, SRC_TCP_LISTEN, SRC_TCP_CONN, SRC_INPROC, SRC_FILE };

struct spct_rx_source {
    enum spct_rx_kind kind;
    int fd;
    size_t index;                   /* the command-line source it belongs to */
    struct spc_decoder *dec;        /* UDP, TCP connections and files */
    struct spc_inproc_receiver *ir; /* inproc */
    uint8_t *buf;                   /* TCP connections and files: bytes not yet parsed */
    size_t len, cap;
    int pcap;                       /* files: 0 packet stream, else a pcap capture */
    bool pcap_swapped;              /* pcap header fields in the other byte order */
    uint32_t linktype;
    bool header_done;               /* pcap global header consumed */
    bool done;                      /* stopped, closed or drained */
    bool polled;                    /* files: a pipe, FIFO or device, read as it comes */
    double paused_until;            /* TCP listeners: not polled before (spct_now) */
    bool counted;                   /* TCP connections: counted in rx->n_conns */
    char name[300];
};

/* The cnt sequence --verify expects (recv-verify.c). */
struct spct_rx_seq {
    uint64_t first, index, count; /* --first-cnt, --substream index/count */
    uint64_t end;                 /* lowest stop heap cnt; UINT64_MAX before one */
    uint8_t *seen, *complete;     /* bit per position of the share */
    uint64_t cap, top;            /* bits held; 1 + the highest position seen (0: none) */
};

enum spct_rx_seq_kind {
    SEQ_NEW,          /* first arrival of a cnt of the share */
    SEQ_DUPLICATE,    /* a heap whose cnt arrived before */
    SEQ_LATE_PACKETS, /* stray packets of a heap that already arrived complete */
    SEQ_UNEXPECTED    /* not a cnt of the share */
};

struct spct_rx {
    const struct spct_recv_opts *o;
    FILE *out, *err;
    struct spct_recv_result r;
    struct spct_rx_source *src;
    size_t n_src, cap_src;
    uint64_t stops_expected;
    struct spc_descriptor_info **desc; /* recv-desc.c's hash table, desc_cap slots */
    size_t n_desc, desc_cap;
    struct spct_rx_seq seq;         /* --verify */
    struct spc_decoder_budget *budget; /* --max-memory, shared by every source's decoder */
    size_t n_conns;                 /* TCP connections open */
    bool warned_accept;             /* accept() failures are reported once */
    bool source_failed;             /* a file could not be read: the run fails */
    double start, first_packet, last_packet;
    bool got_packet;
    unsigned complaints_bad, complaints_corrupt;
    uint8_t *udp_bufs;              /* RECV_UDP_BATCH datagram buffers of packet + 1 bytes */
    struct mmsghdr msgs[RECV_UDP_BATCH];
    struct iovec iovs[RECV_UDP_BATCH];
};

/* speadcast-recv.c */
/* Appends a source (fd -1, the rest zero); may move rx->src. NULL when out of memory. */
struct spct_rx_source *spct_rx_add_source(struct spct_rx *rx, enum spct_rx_kind kind,
                                          size_t index, const char *name);
void spct_rx_close_source(struct spct_rx_source *s);
/* The decoder settings the options ask for. */
void spct_rx_decoder_config(const struct spct_rx *rx, struct spc_decoder_config *dc);
int spct_rx_make_decoder(struct spct_rx *rx, struct spct_rx_source *s);
bool spct_rx_finished(const struct spct_rx *rx);
void spct_rx_handle_heap(struct spct_rx *rx, struct spct_rx_source *s, struct spc_decoded_heap *h);
void spct_rx_drain(struct spct_rx *rx, struct spct_rx_source *s);
void spct_rx_note_packet(struct spct_rx *rx);
void spct_rx_bad_packet(struct spct_rx *rx, struct spct_rx_source *s, int rc, const char *what);
/* Parses whole packets out of a byte stream's buffer (TCP connection or packet file). */
void spct_rx_parse_stream(struct spct_rx *rx, struct spct_rx_source *s);
/* Flushes the source's decoder, reports a partial packet left over, closes it. */
void spct_rx_end_source(struct spct_rx *rx, struct spct_rx_source *s);

/* recv-print.c */
void spct_rx_print_stop(struct spct_rx *rx, const struct spct_rx_source *s,
                        const struct spc_decoded_heap *h, double at);
/* verdict: 1 verified, 0 not checked, -1 corrupt (why says how). */
void spct_rx_print_heap(struct spct_rx *rx, const struct spct_rx_source *s,
                        const struct spc_decoded_heap *h, double at, int verdict,
                        const char *why);
void spct_rx_print_summary(struct spct_rx *rx, bool ok);

/* recv-verify.c */
void spct_rx_seq_init(struct spct_rx_seq *q, uint64_t first, uint64_t index, uint64_t count);
void spct_rx_seq_free(struct spct_rx_seq *q);
/* A stop heap: the sequence ends before its cnt. */
void spct_rx_seq_stop(struct spct_rx_seq *q, uint64_t cnt);
/* A data heap arrived: which kind of arrival it is (recorded if new). */
enum spct_rx_seq_kind spct_rx_seq_data(struct spct_rx_seq *q, uint64_t cnt, bool complete);
/* At the end: cnts of the share before the end that never arrived, and heaps that
 * arrived with cnts at or past the end. */
void spct_rx_seq_count(const struct spct_rx_seq *q, uint64_t *missing, uint64_t *beyond);
/* Checks a heap's items 0x1000.. against the pattern. Returns 1 verified, 0 no data
 * items, -1 corrupt (a message is written to why). */
int spct_rx_verify_heap(struct spct_rx *rx, const struct spc_decoded_heap *h, char *why,
                        size_t why_len);

/* recv-desc.c */
const struct spc_descriptor_info *spct_rx_find_desc(const struct spct_rx *rx, uint64_t id);
/* Takes ownership of info. */
void spct_rx_keep_desc(struct spct_rx *rx, struct spc_descriptor_info *info);
void spct_rx_free_descs(struct spct_rx *rx);

/* recv-net.c */
int spct_rx_open_udp(struct spct_rx *rx, size_t index, const char *text);
void spct_rx_read_udp(struct spct_rx *rx, struct spct_rx_source *s);
int spct_rx_open_tcp(struct spct_rx *rx, size_t index, const char *text);
void spct_rx_accept_tcp(struct spct_rx *rx, size_t listener);
void spct_rx_read_tcp(struct spct_rx *rx, struct spct_rx_source *s);

/* recv-inproc.c */
int spct_rx_open_inproc(struct spct_rx *rx, size_t index, const char *name);
void spct_rx_read_inproc(struct spct_rx *rx, struct spct_rx_source *s);

/* recv-file.c */
int spct_rx_open_file(struct spct_rx *rx, size_t index, const char *path);
void spct_rx_read_file(struct spct_rx *rx, struct spct_rx_source *s);

#endif
