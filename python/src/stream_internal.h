/* Internal to the stream files of the extension: the Stream object and the helpers its
 * three files share. stream.c: open, close, sync sends, settings; stream_args.c: the
 * per-send argument parsing; stream_async.c: asyncio sends and the completion drain. */
#ifndef SPCPY_STREAM_H
#define SPCPY_STREAM_H

#include "spcpy.h"

typedef struct {
    PyObject_HEAD
    struct spc_stream *s;
    uint64_t serial;
    int calls;                /* methods in progress with the GIL released */
    bool closing;             /* close() began: every other call is refused */
    bool blocking;            /* on_full "block": a send may wait for room */
    struct spc_flavour flavour;
    /* Flavour adoption (spead2 streams send heaps of any flavour; ours of one): while
     * adaptive and before the first send, a heap of another flavour makes the Python
     * side reopen the stream in that flavour (_adopt_flavour). used: a send was tried. */
    bool adaptive, used;
    bool completion_queue;    /* as opened, for a reopen */
    int cpu;
    bool cnt_set;             /* set_cnt_sequence called: reapplied after a reopen */
    uint64_t cnt_next, cnt_step;
    /* asyncio */
    PyObject *create_future;  /* loop.create_future, NULL for a sync stream */
    uint64_t async_sent, async_done;
    PyObject *flush_waiters;  /* list of (target async_done, future) */
    /* registered memory (UdpIbvConfig memory_regions): views held until close */
    Py_buffer *regions;
    size_t n_regions;
    PyObject *keep;           /* objects the transport depends on (queues, sockets) */
    PyObject *weakreflist;
} SpcpyStream;

/* A group argument: a HeapReferenceList, or any sequence of HeapReference (converted
 * to a tuple that the send keeps). *keep gets a new reference to what must live until
 * the send completes; refs (PyMem, caller frees) is set for a sequence, list for a
 * HeapReferenceList. */
struct spcpy_group {
    PyObject *keep;
    struct spc_heap_ref *refs;
    size_t n;
    SpcpyHeapReferenceList *hrl;
    struct spc_heap_list *list;
    int mode;
};

/* 0, or -1 with ValueError when the stream is closed. */
int spcpy_stream_ready(SpcpyStream *self);
/* The exception for rc with the stream's last error detail; raise it / build it. */
PyObject *spcpy_stream_err(SpcpyStream *self, int rc);
PyObject *spcpy_stream_err_obj(SpcpyStream *self, int rc);

/* Checks that a heap's flavour is the stream's; before the first send of an adaptive
 * stream, asks the Python side to reopen the stream in the heap's flavour. Marks the
 * stream used. 0, or -1 with ValueError. */
int spcpy_stream_flavour_check(SpcpyStream *self, SpcpyHeap *heap);

/* (heap, cnt=-1, substream_index=0, rate=-1.0) from a vectorcall into *heap and *ref. */
int spcpy_heap_arg(SpcpyStream *self, PyObject *const *args, Py_ssize_t nargs,
                   PyObject *kwnames, SpcpyHeap **heap, struct spc_heap_ref *ref);
/* (heaps, mode) into *g; spcpy_group_free releases it. */
int spcpy_group_arg(SpcpyStream *self, PyObject *args, PyObject *kw, struct spcpy_group *g);
void spcpy_group_busy(struct spcpy_group *g, Py_ssize_t delta);
int spcpy_group_send(SpcpyStream *self, struct spcpy_group *g, spc_send_callback cb, void *user);
void spcpy_group_free(struct spcpy_group *g);

/* Resolves the futures of every queued completion (GIL held, never blocks); a future that
 * cannot be resolved is reported as unraisable, never left as a pending exception. */
void spcpy_stream_drain_all(SpcpyStream *self);
PyObject *spcpy_stream_async_send_heap(SpcpyStream *self, PyObject *const *args,
                                       Py_ssize_t nargs, PyObject *kwnames);
PyObject *spcpy_stream_async_send_heaps(SpcpyStream *self, PyObject *args, PyObject *kw);
PyObject *spcpy_stream_async_flush(SpcpyStream *self, PyObject *unused);
PyObject *spcpy_stream_attach_loop(SpcpyStream *self, PyObject *loop);
PyObject *spcpy_stream_process_completions(SpcpyStream *self, PyObject *unused);

#endif
