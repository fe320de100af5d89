/* example-send: loads the transport a JSON config names and sends three heaps through it.
 *
 *   example-send CONFIG.json      send the heaps (cnt 1..3) with the config's transport
 *   example-send --verify FILE    decode FILE (a packet stream) and check those heaps
 *
 * Exit status 0 on success; errors are printed with the library's detail text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/speadcast.h"

#define N_HEAPS 3
#define BIG 20000

static uint8_t big[BIG];

static void fill(void)
{
    for (size_t i = 0; i < BIG; i++)
        big[i] = (uint8_t)(i * 31 + 7);
}

static int send_all(const char *config)
{
    char err[4096];
    struct spc_config *cfg;
    int rc = spc_config_load(&cfg, config, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "example-send: %s\n", err);
        return 1;
    }
    struct spc_transport_handle *h;
    rc = spc_transport_handle_open(&h, cfg, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "example-send: %s\n", err);
        spc_config_destroy(cfg);
        return 1;
    }
    const struct spc_stream_config *sc = spc_config_stream(cfg);
    size_t mps = sc->max_packet_size, scratch_len = spc_packet_scratch_size(mps);
    uint8_t *scratch = malloc(scratch_len);
    int status = 0;
    for (uint64_t cnt = 1; cnt <= N_HEAPS && !status && scratch; cnt++) {
        struct spc_heap *heap;
        if (spc_heap_create(&heap, &sc->flavour) < 0)
            return 1;
        spc_heap_add_inline(heap, 0x1000, cnt * 100);
        spc_heap_add_item(heap, 0x1001, big, (size_t)(BIG / cnt), false);
        struct spc_packetizer pz;
        struct spc_packet pkt;
        rc = spc_packetizer_init(&pz, heap, cnt, mps);
        while (rc == 0 && spc_packetizer_next(&pz, scratch, &pkt) == 1)
            rc = spc_transport_handle_send(h, &pkt, 1, 0, NULL);
        if (rc < 0) {
            char detail[512];
            spc_transport_handle_last_error(h, detail, sizeof detail);
            fprintf(stderr, "example-send: heap %llu: %s (%s)\n", (unsigned long long)cnt, spc_strerror(rc),
                    detail);
            status = 1;
        }
        spc_heap_destroy(heap);
    }
    free(scratch);
    spc_transport_handle_close(h);
    spc_config_destroy(cfg);
    if (!status)
        printf("sent %d heaps as configured in %s\n", N_HEAPS, config);
    return status;
}

static int verify(const char *file)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        perror(file);
        return 1;
    }
    static uint8_t data[1 << 20];
    size_t len = fread(data, 1, sizeof data, f);
    fclose(f);
    struct spc_decoder *dec;
    if (spc_decoder_create(&dec, NULL) < 0)
        return 1;
    int rc = spc_decoder_add_stream(dec, data, len, NULL);
    spc_decoder_flush(dec);
    int found = 0, bad = rc < 0;
    struct spc_decoded_heap *hp;
    while (spc_decoder_pop(dec, &hp) == 1) {
        found++;
        size_t want = (size_t)(BIG / hp->cnt);
        bad |= !hp->complete || hp->n_items != 2 || hp->items[0].value != hp->cnt * 100 ||
               hp->items[1].len != want || memcmp(hp->items[1].data, big, want) != 0;
        spc_decoded_heap_free(hp);
    }
    spc_decoder_destroy(dec);
    if (bad || found != N_HEAPS) {
        fprintf(stderr, "example-send: %s: %d heaps decoded, %s\n", file, found, bad ? "content wrong" : "count wrong");
        return 1;
    }
    printf("verified %d heaps in %s\n", found, file);
    return 0;
}

int main(int argc, char **argv)
{
    fill();
    if (argc == 2)
        return send_all(argv[1]);
    if (argc == 3 && !strcmp(argv[1], "--verify"))
        return verify(argv[2]);
    fprintf(stderr, "usage: example-send CONFIG.json | example-send --verify FILE\n");
    return 2;
}
