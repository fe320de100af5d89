/* The writer threads of a send stream (stream_writer.c), core-internal. */
#ifndef SPCI_STREAM_WRITER_H
#define SPCI_STREAM_WRITER_H

#include "stream_state.h"

/* The writer thread's body (arg: its struct writer), and svc->complete for an
 * asynchronous transport (ctx: the writer, token: the packet's struct tx). */
void *spci_stream_writer_main(void *arg);
void spci_stream_on_transport_complete(void *ctx, void *token, int status);

/* The batch arrays and rings of writer w (after s->arena_size is set), and their release. */
int spci_stream_writer_alloc(struct writer *w);
void spci_stream_writer_free(struct writer *w);

#endif
