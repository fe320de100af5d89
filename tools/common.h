/* Shared by speadcast-send, speadcast-recv and speadcast-bench: option parsing,
 * host:port parsing, the --verify data pattern, JSON text output and timing.
 *
 * The tools' code lives in the static library speadcast_tools so that tests and
 * speadcast-bench can run a sender and a receiver in one process; each executable is
 * tool-main.c calling one spct_*_main. Nothing here keeps global state except
 * spct_interrupted, so several tools may run at once on different threads.
 *
 * Exit status of every tool: 0 success, 1 a run-time failure (including lost or corrupt
 * heaps when verifying), 2 bad usage; speadcast-send ended by SIGINT or SIGTERM: 128 +
 * the signal (130, 143).
 */
#ifndef SPCT_COMMON_H
#define SPCT_COMMON_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define SPCT_EXIT_OK 0
#define SPCT_EXIT_FAIL 1
#define SPCT_EXIT_USAGE 2

/* Set (to the signal number) by the SIGINT/SIGTERM handler that spct_install_signals
 * installs (only the executables install it); the tools' loops poll it and finish
 * cleanly. A second signal (0.25 s or more after the first) ends the process at once
 * with status 128 + signal. */
extern volatile sig_atomic_t spct_interrupted;
/* True once spct_install_signals ran: this process is one of the executables. */
extern bool spct_signals_installed;
void spct_install_signals(void);
/* 128 + the signal that interrupted (SIGINT when set by other means). */
int spct_interrupt_status(void);

/* ------------------------------------------------------------ options */

enum spct_opt_type {
    SPCT_OPT_FLAG,   /* bool; takes no value */
    SPCT_OPT_UINT,   /* uint64_t; decimal or 0x hex, optional K/M/G suffix (x 1024^n) */
    SPCT_OPT_INT,    /* int64_t; as UINT, a leading '-' allowed */
    SPCT_OPT_DOUBLE, /* double; finite */
    SPCT_OPT_STRING, /* const char * (points into argv); non-empty */
    SPCT_OPT_CHOICE, /* int: index into choices, matched without regard to case */
    SPCT_OPT_LIST    /* struct spct_u64_list: comma-separated UINT values (malloc'd) */
};

struct spct_u64_list {
    uint64_t *v;
    size_t n;
};

/* One long option, "--name VALUE" or "--name=VALUE". Bounds apply to numbers (and to
 * each element of a list). */
struct spct_opt {
    const char *name;
    enum spct_opt_type type;
    void *dest;
    bool *given;          /* set true when the option appears; may be NULL */
    const char *metavar;  /* shown in --help; NULL for flags */
    const char *help;
    bool has_min, has_max;
    double min, max;
    const char *const *choices; /* CHOICE: NULL-terminated */
};

/* Parses argv[1..argc) against the table. Values are stored through dest as they come
 * (so a repeated option keeps the last value; LIST values are replaced). Positional
 * arguments (and everything after "--") are returned in *pos (a malloc'd array of
 * pointers into argv; free it) and *n_pos. "-h"/"--help" prints usage (synopsis, then
 * each option with its metavar, help and default) to out and returns 1. A bad option or
 * value prints "PROG: message" and a hint to err and returns -1. Returns 0 otherwise.
 * Thread-safe (no getopt state). */
int spct_parse_options(const char *prog, const char *synopsis, const struct spct_opt *opts,
                       size_t n_opts, int argc, char **argv, char ***pos, size_t *n_pos,
                       FILE *out, FILE *err);

/* Frees the arrays that LIST options hold. */
void spct_free_lists(const struct spct_opt *opts, size_t n_opts);

/* Parses a number as the options do (for tests and the tools' own checks). Returns 0,
 * or -1 with the reason in why (a static string). */
int spct_parse_u64(const char *s, uint64_t *out, const char **why);
int spct_parse_i64(const char *s, int64_t *out, const char **why);
int spct_parse_double(const char *s, double *out, const char **why);

/* ------------------------------------------------------------ endpoints */

/* A destination or source "host:port", "[v6addr]:port", or, when passive, also ":port"
 * or "port" (host empty: any address). Port 1..65535, or 0..65535 when passive (0 asks
 * the system for a free port). Returns 0, or -1 with a message in why (why_len bytes). */
struct spct_endpoint {
    char host[256];
    unsigned port;
};
int spct_parse_endpoint(const char *text, bool passive, struct spct_endpoint *ep, char *why,
                        size_t why_len);

/* "host:port" text of a socket address ("[v6]:port" for IPv6). */
void spct_format_sockaddr(const struct sockaddr *sa, char *buf, size_t len);

/* ------------------------------------------------------------ --verify pattern */

/* The minimal standard generator (std::minstd_rand): x <- 48271 x mod (2^31 - 1), seed
 * 1. Output number n (n >= 1) is 48271^n mod (2^31 - 1). The data of a heap with cnt c
 * holding `items` items of `elements` 32-bit big-endian elements is outputs
 * (c-1)*items*elements + 1, ... item by item, element by element: what spead2_send
 * --verify writes. */
#define SPCT_LCG_MOD 2147483647u
#define SPCT_LCG_MUL 48271u

static inline uint32_t spct_lcg_next(uint32_t x)
{
    uint64_t p = (uint64_t)x * SPCT_LCG_MUL;
    p = (p & SPCT_LCG_MOD) + (p >> 31); /* 2^31 = 1 (mod 2^31 - 1) */
    if (p >= SPCT_LCG_MOD)
        p -= SPCT_LCG_MOD;
    return (uint32_t)p;
}

/* The generator's state after n steps from seed 1 (48271^n mod 2^31-1); n = 0 gives 1. */
uint32_t spct_lcg_at(uint64_t n);

/* Writes outputs pos+1 .. pos+n big-endian into dst (4n bytes, any alignment). */
void spct_pattern_fill(void *dst, size_t n, uint64_t pos);

/* Compares n big-endian elements at src with outputs pos+1 .. pos+n. Returns the index
 * of the first mismatch (its found and expected values in *got, *want), or n. */
size_t spct_pattern_check(const void *src, size_t n, uint64_t pos, uint32_t *got, uint32_t *want);

/* ------------------------------------------------------------ output */

/* JSON output goes through jansson (json_t from <jansson.h>). */
struct json_t;
/* A JSON string of s (NULL gives null; bytes that are not UTF-8 become U+FFFD). */
struct json_t *spct_json_text(const char *s);
/* A JSON number (non-finite gives null). */
struct json_t *spct_json_real(double v);
/* A JSON integer (above INT64_MAX: a real). */
struct json_t *spct_json_u64(uint64_t v);
/* Writes obj on one line (keys in insertion order), flushes f and releases obj. */
void spct_json_print(FILE *f, struct json_t *obj);

/* CLOCK_MONOTONIC in seconds. */
double spct_now(void);

/* Sleeps for the given number of seconds (interrupted early by nothing). */
void spct_sleep(double seconds);

/* Writes text to path atomically (a temporary file made with mkstemp in the same
 * directory, renamed over it). Refuses to replace anything but a regular file
 * (-SPCT_ENOTREG). Returns 0 or -errno. */
#define SPCT_ENOTREG 1000 /* not an errno: "is not a regular file" */
int spct_write_file_atomic(const char *path, const char *text);

/* ------------------------------------------------------------ speadcast-send */

/* Options of speadcast-send; spct_send_defaults gives spead2_send's defaults. Strings
 * point into argv (or the caller's memory); dest is malloc'd by spct_send_parse. */
struct spct_send_opts {
    uint64_t heap_size;     /* --heap-size 4194304 */
    uint64_t items;         /* --items 1 */
    int64_t heaps;          /* --heaps -1 (infinite) */
    bool verify;
    bool no_layout;         /* --no-layout: data heaps borrow the tool's buffers */
    bool pyspead;
    int64_t addr_bits;      /* --addr-bits 40 */
    const char *flavour;    /* --flavour SPEAD-64-48[:bug_compat] */
    bool tcp, ibv, inproc;
    const char *bind;
    uint64_t packet;        /* --packet 1472 */
    uint64_t buffer;        /* --buffer: the transport's default unless given */
    uint64_t burst;         /* --burst 65536 */
    double burst_rate_ratio;/* --burst-rate-ratio 1.05 */
    uint64_t max_heaps;     /* --max-heaps 4 */
    uint64_t writer_threads;/* --writer-threads 1 */
    int rate_method;        /* enum spct_rate_method, --rate-method auto */
    double rate;            /* --rate 0 Gb/s = unlimited */
    int64_t ttl;            /* --ttl 1 */
    int64_t ibv_vector;     /* --ibv-vector 0 */
    int64_t ibv_max_poll;   /* --ibv-max-poll 10 */
    const char *config;     /* --config FILE */
    double send_timeout;    /* --send-timeout: tcp's send_timeout, seconds (0 = none) */
    bool json, quiet, progress, no_progress;
    struct {
        bool addr_bits, packet, buffer, burst, burst_rate_ratio, max_heaps, rate_method, rate,
            ttl, bind, ibv_vector, ibv_max_poll, writer_threads, send_timeout;
    } given;
    /* After parsing: the flavour every heap is sent in. */
    unsigned heap_address_bits, bug_compat;
    const char **dest;      /* positional: host:port (or queue names with --inproc) */
    size_t n_dest;
    /* Library use only (speadcast-bench): past this spct_now() time no more data heaps
     * are queued, as after SIGINT (0 = no limit). */
    double stop_at;
};

struct spct_send_result {
    uint64_t bytes;         /* sum of the bytes of the heaps sent */
    double seconds;         /* first send to last completion */
    uint64_t heaps;         /* heaps sent (stop heaps included); failed ones not */
    uint64_t data_heaps, stop_heaps;
    uint64_t packets;
    uint64_t packets_in_place; /* of them, sent as one piece from a laid-out heap */
    uint64_t errors;        /* heaps that completed with an error */
    uint64_t failed_bytes;  /* payload bytes of the heaps that failed */
    uint64_t aborted;       /* heaps still in flight when the interrupted run gave up */
    unsigned substreams;
    bool interrupted;
};

void spct_send_defaults(struct spct_send_opts *o);
/* Returns 0 (run), 1 (help printed: exit 0) or SPCT_EXIT_USAGE (message printed). */
int spct_send_parse(struct spct_send_opts *o, int argc, char **argv, FILE *out, FILE *err);
void spct_send_opts_free(struct spct_send_opts *o);
/* Sends the stream; prints the summary (or JSON) to out and problems to err. Returns
 * the exit status. r may be NULL. */
int spct_send_run(const struct spct_send_opts *o, struct spct_send_result *r, FILE *out,
                  FILE *err);
int spct_send_main(int argc, char **argv, FILE *out, FILE *err);

/* ------------------------------------------------------------ speadcast-recv */

struct spct_recv_opts {
    bool tcp, inproc;
    bool verify, quiet, json, pyspead, descriptors;
    const char *bind;          /* IPv4 multicast interface address */
    uint64_t packet;           /* largest packet accepted (UDP: datagram size), 9200 */
    uint64_t buffer;           /* socket receive buffer, 8 MiB for UDP */
    uint64_t concurrent_heaps; /* incomplete heaps kept per source (decoder), 16 */
    uint64_t max_heap_size;    /* larger heaps are refused, 256 MiB */
    int64_t heaps;             /* stop after this many heaps (stop heaps not counted); -1 */
    int64_t stops;             /* stop heaps that end the run; -1 = one per source */
    double timeout;            /* seconds for the whole run; 0 = none */
    double idle_timeout;       /* seconds without a packet after the first; 0 = none */
    const char *ready_file;    /* written with the bound host:port lines once listening */
    uint64_t first_cnt;        /* --verify: the sender's first heap cnt, 1 */
    const char *substream;     /* --verify: "I/N", this receiver gets substream I of N */
    uint64_t substream_index, substream_count; /* parsed from substream; 0 and 1 */
    uint64_t max_memory;       /* live heaps of all sources together, 1 GiB */
    uint64_t max_connections;  /* TCP connections open at once, 64 */
    uint64_t max_descriptors;  /* descriptors kept (by item ID), 65536 */
    bool given_packet, given_buffer;
    const char **sources;
    size_t n_sources;
    /* Library use only (speadcast-bench, tests): called once every source listens,
     * with their bound addresses (NULL, 0 for inproc); and a flag that ends the run
     * (like a timeout) when it becomes non-zero. */
    void (*ready)(void *user, const struct sockaddr_storage *addrs, size_t n);
    void *ready_user;
    const atomic_int *cancel;
};

struct spct_recv_result {
    uint64_t heaps;            /* heaps received, stop heaps not counted */
    uint64_t complete, incomplete, corrupt, missing;
    uint64_t stops;
    uint64_t packets, bad_packets;
    uint64_t bytes;            /* payload bytes of complete heaps */
    uint64_t verified;         /* heaps whose data matched the pattern */
    uint64_t duplicates;       /* --verify: heaps whose cnt arrived before */
    uint64_t duplicate_packets;/* --verify: stray packets of heaps already complete */
    uint64_t unexpected;       /* --verify: heaps with cnts outside the sequence */
    uint64_t memory_refused;   /* packets refused for --max-memory (in bad_packets too) */
    uint64_t connections_refused; /* TCP connections closed for --max-connections */
    uint64_t descriptors_dropped; /* new descriptors beyond --max-descriptors */
    double seconds;            /* first packet to last packet */
    bool timed_out;            /* ended by --timeout, --idle-timeout or cancel */
    bool finished;             /* every expected stop heap arrived, or --heaps reached */
};

void spct_recv_defaults(struct spct_recv_opts *o);
int spct_recv_parse(struct spct_recv_opts *o, int argc, char **argv, FILE *out, FILE *err);
void spct_recv_opts_free(struct spct_recv_opts *o);
int spct_recv_run(const struct spct_recv_opts *o, struct spct_recv_result *r, FILE *out,
                  FILE *err);
int spct_recv_main(int argc, char **argv, FILE *out, FILE *err);

/* ------------------------------------------------------------ speadcast-bench */

int spct_bench_main(int argc, char **argv, FILE *out, FILE *err);

#endif
