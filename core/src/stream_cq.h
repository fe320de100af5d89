/* The completion queue of a send stream (stream_cq.c), core-internal. */
#ifndef SPCI_STREAM_CQ_H
#define SPCI_STREAM_CQ_H

#include "stream_state.h"

/* Queues the completions of the n records d that go to the completion queue (those
 * without a callback and not synchronous), in order, for spc_stream_drain; signals the
 * eventfd at most once, and not while an earlier signal is unread. Writer only. */
void spci_stream_cq_push(struct spc_stream *s, const struct done_rec *d, size_t n);

#endif
