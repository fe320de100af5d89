/* Memory registration of a send stream (stream_memory.c), core-internal. */
#ifndef SPCI_STREAM_MEMORY_H
#define SPCI_STREAM_MEMORY_H

#include "stream_state.h"

/* Gives m's handles back to every writer's transport object (close). */
int spci_stream_memory_release(struct spc_stream *s, struct spc_stream_memory *m);

#endif
