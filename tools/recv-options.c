/* speadcast-recv's options: defaults, the option table and the checks that need more
 * than one option. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recv.h"

void spct_recv_defaults(struct spct_recv_opts *o)
{
    memset(o, 0, sizeof *o);
    o->packet = 9200;
    o->buffer = 8u << 20;
    o->concurrent_heaps = 16;
    o->max_heap_size = 256u << 20;
    o->heaps = -1;
    o->stops = -1;
    o->first_cnt = 1;
    o->substream_count = 1;
    o->max_memory = UINT64_C(1) << 30;
    o->max_connections = 64;
    o->max_descriptors = 65536;
}

void spct_recv_opts_free(struct spct_recv_opts *o)
{
    free(o->sources);
    o->sources = NULL;
    o->n_sources = 0;
}

int spct_recv_parse(struct spct_recv_opts *o, int argc, char **argv, FILE *out, FILE *err)
{
    const struct spct_opt opts[] = {
        {"tcp", SPCT_OPT_FLAG, &o->tcp, NULL, NULL,
         "listen for TCP connections instead of UDP datagrams", false, false, 0, 0, NULL},
        {"inproc", SPCT_OPT_FLAG, &o->inproc, NULL, NULL,
         "sources are in-process queue names (tests and speadcast-bench)", false, false, 0, 0,
         NULL},
        {"verify", SPCT_OPT_FLAG, &o->verify, NULL, NULL,
         "check the speadcast-send --verify pattern and cnt sequence; exit 1 on any lost, "
         "duplicated or corrupt heap", false,
         false, 0, 0, NULL},
        {"quiet", SPCT_OPT_FLAG, &o->quiet, NULL, NULL, "print only the summary (also with --json)",
         false, false, 0, 0, NULL},
        {"descriptors", SPCT_OPT_FLAG, &o->descriptors, NULL, NULL,
         "accepted for spead2_recv compatibility (descriptors are always shown)", false, false,
         0, 0, NULL},
        {"json", SPCT_OPT_FLAG, &o->json, NULL, NULL,
         "one JSON object per heap and one for the summary, one per line", false, false, 0, 0,
         NULL},
        {"pyspead", SPCT_OPT_FLAG, &o->pyspead, NULL, NULL,
         "be bug-compatible with PySPEAD (bug_compat 7 for descriptors)", false, false, 0, 0,
         NULL},
        {"bind", SPCT_OPT_STRING, &o->bind, NULL, "ADDRESS",
         "interface address for IPv4 multicast sources", false, false, 0, 0, NULL},
        {"packet", SPCT_OPT_UINT, &o->packet, &o->given_packet, "BYTES",
         "largest packet accepted (default 9200 for UDP, 65536 for TCP)", true, true,
         SPC_MIN_PACKET_SIZE, SPC_STREAM_MAX_PACKET_SIZE, NULL},
        {"buffer", SPCT_OPT_UINT, &o->buffer, &o->given_buffer, "BYTES",
         "socket receive buffer (UDP default 8 MiB; TCP default the system's)", true, true, 0,
         2147483647.0, NULL},
        {"concurrent-heaps", SPCT_OPT_UINT, &o->concurrent_heaps, NULL, "N",
         "incomplete heaps kept per source before the oldest is given up", true, true, 1, 65536,
         NULL},
        {"max-heap-size", SPCT_OPT_UINT, &o->max_heap_size, NULL, "BYTES",
         "heaps announcing more are refused", true, true, 1, 68719476736.0, NULL},
        {"heaps", SPCT_OPT_INT, &o->heaps, NULL, "N",
         "stop after N heaps, stop heaps not counted (-1 = no limit)", true, false, -1, 0, NULL},
        {"stops", SPCT_OPT_INT, &o->stops, NULL, "N",
         "stop heaps that end the run (-1 = one per source, 0 = run on)", true, false, -1, 0, NULL},
        {"timeout", SPCT_OPT_DOUBLE, &o->timeout, NULL, "SECONDS",
         "give up after this long (0 = never)", true, true, 0, 1e9, NULL},
        {"idle-timeout", SPCT_OPT_DOUBLE, &o->idle_timeout, NULL, "SECONDS",
         "give up when no packet came for this long after the first (0 = never)", true, true, 0,
         1e9, NULL},
        {"ready-file", SPCT_OPT_STRING, &o->ready_file, NULL, "FILE",
         "once listening, write the bound host:port of each source to FILE (one per line; "
         "FILE must be a regular file if it exists)", false, false, 0, 0, NULL},
        {"first-cnt", SPCT_OPT_UINT, &o->first_cnt, NULL, "CNT",
         "--verify: the cnt of the sender's first heap", true, false, 0, 0,
         NULL},
        {"substream", SPCT_OPT_STRING, &o->substream, NULL, "I/N",
         "--verify: these sources carry substream I of the sender's N (heap cnts first+I, "
         "first+I+N, ...)", false, false, 0, 0, NULL},
        {"max-memory", SPCT_OPT_UINT, &o->max_memory, NULL, "BYTES",
         "memory the heaps being reassembled may hold, all sources together; packets "
         "beyond it are refused and counted", true, true, 65536, 1125899906842624.0, NULL},
        {"max-connections", SPCT_OPT_UINT, &o->max_connections, NULL, "N",
         "TCP connections open at once; later ones are closed and counted", true, true, 1,
         65536, NULL},
        {"max-descriptors", SPCT_OPT_UINT, &o->max_descriptors, NULL, "N",
         "item descriptors kept; new IDs beyond it are counted and not kept", true, true, 0,
         16777216, NULL},
    };
    char **pos;
    size_t n_pos;
    int rc = spct_parse_options(RECV_PROG, "[options] [host]:port|file|queue ...", opts,
                                sizeof opts / sizeof opts[0], argc, argv, &pos, &n_pos, out, err);
    if (rc == 1)
        return 1;
    if (rc < 0)
        return SPCT_EXIT_USAGE;
    free(o->sources);
    o->sources = (const char **)pos;
    o->n_sources = n_pos;
    if (o->tcp && o->inproc) {
        fprintf(err, RECV_PROG ": choose one of --tcp and --inproc\n");
        return SPCT_EXIT_USAGE;
    }
    if (n_pos == 0) {
        fprintf(err, RECV_PROG ": at least one source is required: [host]:port (port 0 picks a free "
                     "one), or a queue name with --inproc\n");
        return SPCT_EXIT_USAGE;
    }
    if (o->tcp && !o->given_packet)
        o->packet = 65536;
    if (o->substream) {
        char *slash = strchr(o->substream, '/');
        uint64_t i, n;
        const char *why = "expected I/N";
        if (!slash || slash == o->substream ||
            spct_parse_u64(slash + 1, &n, &why) < 0 || n == 0 || n > 65536) {
            fprintf(err, RECV_PROG ": --substream '%s': %s (N from 1 to 65536)\n", o->substream,
                    why);
            return SPCT_EXIT_USAGE;
        }
        char idx[32];
        snprintf(idx, sizeof idx, "%.*s", (int)(slash - o->substream), o->substream);
        if (spct_parse_u64(idx, &i, &why) < 0 || i >= n) {
            fprintf(err, RECV_PROG ": --substream '%s': I must be a substream index below N\n",
                    o->substream);
            return SPCT_EXIT_USAGE;
        }
        o->substream_index = i;
        o->substream_count = n;
    }
    for (size_t i = 0; i < n_pos; i++) {
        if (o->inproc) {
            if (strlen(pos[i]) > SPC_INPROC_NAME_MAX) {
                fprintf(err, RECV_PROG ": queue name '%s' is longer than %d bytes\n", pos[i],
                        SPC_INPROC_NAME_MAX);
                return SPCT_EXIT_USAGE;
            }
            continue;
        }
        struct spct_endpoint ep;
        char why[512];
        if (spct_parse_endpoint(pos[i], true, &ep, why, sizeof why) < 0 &&
            access(pos[i], R_OK) != 0) {
            fprintf(err, RECV_PROG ": source %s, and no readable file has that name\n", why);
            return SPCT_EXIT_USAGE;
        }
    }
    return 0;
}
