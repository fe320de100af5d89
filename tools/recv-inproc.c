/* speadcast-recv's in-process queue sources (tests and speadcast-bench). */
#include <errno.h>

#include "recv.h"

/* ------------------------------------------------------------ inproc */

int spct_rx_open_inproc(struct spct_rx *rx, size_t index, const char *name)
{
    char label[300];
    snprintf(label, sizeof label, "queue '%s'", name);
    struct spct_rx_source *s = spct_rx_add_source(rx, SRC_INPROC, index, label);
    if (!s)
        return -1;
    struct spc_decoder_config dc;
    spct_rx_decoder_config(rx, &dc);
    int rc = spc_inproc_receiver_create(&s->ir, name, &dc);
    if (rc < 0) {
        fprintf(rx->err, RECV_PROG ": queue '%s': %s\n", name, spc_strerror(rc));
        return -1;
    }
    s->fd = -1;
    return 0;
}

void spct_rx_read_inproc(struct spct_rx *rx, struct spct_rx_source *s)
{
    for (int round = 0; round < 256 && !spct_rx_finished(rx); round++) {
        struct spc_decoded_heap *h;
        int rc = spc_inproc_receiver_next(s->ir, &h, 0);
        if (rc == 0) {
            spct_rx_note_packet(rx);
            spct_rx_handle_heap(rx, s, h);
            continue;
        }
        if (rc == -SPC_ESTOPPED)
            s->done = true;
        else if (rc != -EAGAIN && rc != -ETIMEDOUT)
            fprintf(rx->err, RECV_PROG ": %s: %s\n", s->name, spc_strerror(rc));
        return;
    }
}

