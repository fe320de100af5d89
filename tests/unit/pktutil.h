/* Packetizing a heap into separately held packets (iovecs kept, scratch per packet),
 * shared by the suites that push packets into transports by hand. Include after
 * <criterion/criterion.h> and <speadcast/speadcast.h>. */
#ifndef SPC_PKTUTIL_H
#define SPC_PKTUTIL_H

#include <stdlib.h>

struct pkts {
    size_t n;
    struct spc_packet *p;
    uint8_t **scratch;
};

static inline void packetize(struct pkts *out, const struct spc_heap *heap, uint64_t cnt, size_t mps)
{
    struct spc_packetizer pz;
    cr_assert_eq(spc_packetizer_init(&pz, heap, cnt, mps), 0);
    out->n = spc_packetizer_count(&pz);
    out->p = calloc(out->n, sizeof *out->p);
    out->scratch = calloc(out->n, sizeof *out->scratch);
    cr_assert(out->p && out->scratch);
    for (size_t i = 0; i < out->n; i++) {
        out->scratch[i] = malloc(spc_packet_scratch_size(mps));
        cr_assert_eq(spc_packetizer_next(&pz, out->scratch[i], &out->p[i]), 1);
    }
    cr_assert(spc_packetizer_done(&pz));
}

static inline void pkts_free(struct pkts *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->scratch[i]);
    free(p->scratch);
    free(p->p);
}

#endif
