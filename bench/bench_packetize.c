/* Packetizer throughput without I/O: walking a heap's packets as scatter/gather pieces,
 * and walking plus spc_packet_write into a contiguous buffer (the copy a transport without
 * scatter/gather would pay). Prints figures; nothing here passes or fails.
 *
 * Usage: bench_packetize [seconds per case, default 0.5] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "speadcast/speadcast.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Keeps results observable so the walk cannot be optimised away. */
static volatile uint64_t sink;

struct result {
    uint64_t heaps, packets, payload, wire;
    double seconds;
};

/* Packetizes heap repeatedly for about `seconds`; with `copy`, writes every packet out. */
static int run(const struct spc_heap *heap, size_t mps, int copy, double seconds, struct result *r)
{
    uint8_t *scratch = malloc(spc_packet_scratch_size(mps));
    uint8_t *out = malloc(mps);
    if (!scratch || !out) {
        free(scratch);
        free(out);
        return -1;
    }
    memset(r, 0, sizeof(*r));
    uint64_t payload = spc_heap_payload_size(heap);
    uint64_t cnt = 1;
    double start = now_s(), t = start;
    while (t - start < seconds) {
        for (int rep = 0; rep < 16; rep++) {
            struct spc_packetizer pz;
            int rc = spc_packetizer_init(&pz, heap, cnt++ & 0xffffffff, mps);
            if (rc < 0) {
                fprintf(stderr, "packetizer_init: %s\n", spc_strerror(rc));
                free(scratch);
                free(out);
                return -1;
            }
            struct spc_packet pkt;
            while (spc_packetizer_next(&pz, scratch, &pkt) == 1) {
                if (copy)
                    sink += (uint64_t)spc_packet_write(&pkt, out, mps) + out[pkt.size - 1];
                else
                    sink += pkt.size + pkt.n_iov;
                r->packets++;
                r->wire += pkt.size;
            }
            r->heaps++;
            r->payload += payload;
        }
        t = now_s();
    }
    r->seconds = t - start;
    free(scratch);
    free(out);
    return 0;
}

static void print_row(const char *what, size_t mps, const char *mode, const struct result *r)
{
    double s = r->seconds;
    printf("%-26s %6zu  %-6s %12.0f %13.0f %9.2f %9.2f %9.1f\n", what, mps, mode, r->heaps / s, r->packets / s,
           r->payload / s / 1e9, r->wire / s / 1e9, s * 1e9 / (double)r->packets);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0.5;
    if (seconds <= 0 || seconds > 60) {
        fprintf(stderr, "usage: %s [seconds per case, in (0, 60]]\n", argv[0]);
        return 2;
    }
    int rc;
    /* A 1 MiB heap: one 1 MiB array item plus a timestamp immediate. */
    size_t big_len = 1u << 20;
    uint8_t *big = malloc(big_len);
    if (!big)
        return 1;
    for (size_t i = 0; i < big_len; i++)
        big[i] = (uint8_t)(i * 131);
    struct spc_heap *mib;
    if ((rc = spc_heap_create(&mib, NULL)) < 0 || (rc = spc_heap_add_inline(mib, 0x1600, 0x123456789)) < 0 ||
        (rc = spc_heap_add_item(mib, 0x1000, big, big_len, false)) < 0) {
        fprintf(stderr, "building the 1 MiB heap: %s\n", spc_strerror(rc));
        return 1;
    }
    /* 64 small immediates (8 inline integers and 56 short buffers). */
    static uint8_t small[56][4];
    struct spc_heap *imm;
    if ((rc = spc_heap_create(&imm, NULL)) < 0) {
        fprintf(stderr, "%s\n", spc_strerror(rc));
        return 1;
    }
    for (unsigned i = 0; i < 64 && rc == 0; i++) {
        if (i < 8) {
            rc = spc_heap_add_inline(imm, 0x1000 + i, i * 1000);
        } else {
            memset(small[i - 8], (int)i, 4);
            rc = spc_heap_add_item(imm, 0x1000 + i, small[i - 8], 4, true);
        }
    }
    if (rc < 0) {
        fprintf(stderr, "building the immediates heap: %s\n", spc_strerror(rc));
        return 1;
    }

    printf("speadcast %s packetizer benchmark (SPEAD-64-40, no I/O, %.2f s per case)\n", SPC_VERSION_STRING, seconds);
    printf("walk = packetizer_next only (scatter/gather pieces); write = also spc_packet_write to a buffer\n\n");
    printf("%-26s %6s  %-6s %12s %13s %9s %9s %9s\n", "heap", "mps", "mode", "heaps/s", "packets/s", "payload", "wire",
           "ns/pkt");
    printf("%-26s %6s  %-6s %12s %13s %9s %9s %9s\n", "", "", "", "", "", "GB/s", "GB/s", "");
    static const size_t sizes[] = {1472, 8972};
    struct result r;
    for (size_t i = 0; i < 2; i++)
        for (int copy = 0; copy < 2; copy++) {
            if (run(mib, sizes[i], copy, seconds, &r) < 0)
                return 1;
            print_row("1 MiB (1 array + 1 imm)", sizes[i], copy ? "write" : "walk", &r);
        }
    for (int copy = 0; copy < 2; copy++) {
        if (run(imm, 1472, copy, seconds, &r) < 0)
            return 1;
        print_row("64 small immediates", 1472, copy ? "write" : "walk", &r);
    }
    spc_heap_destroy(mib);
    spc_heap_destroy(imm);
    free(big);
    return 0;
}
