/* Shared declarations of the _speadcast extension module (the C half of the Python
 * package speadcast). One file per object: heap.c (Heap, PacketGenerator), heapref.c
 * (HeapReference, HeapReferenceList), stream.c (streams, sync and asyncio sends),
 * decode.c (decoder, descriptor parsing, in-process queues and receiver), module.c
 * (errors, constants, the transport catalogue, module set-up).
 *
 * GIL rules: every call that may wait (blocking sends, flush, open, close, queue pops)
 * runs with the GIL released. The library's writer thread never calls into Python:
 * asyncio completions go through the stream's completion queue and are drained by the
 * event loop thread with the GIL held.
 */
#ifndef SPCPY_H
#define SPCPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <speadcast/speadcast.h>

/* ------------------------------------------------------------ errors (module.c) */

/* Builds the exception instance spead2 would raise for code rc (negative), with our
 * text: "<spc_strerror>: <detail>" (detail may be NULL or ""). ValueError for bad
 * arguments, encodings and configs; OSError(errno) for transport and queue errors
 * (-SPC_EQUEUE_FULL is ENOBUFS, as spead2's "no buffer space"); MemoryError. */
PyObject *spcpy_error(int rc, const char *detail);
/* Raises spcpy_error(rc, detail); returns NULL. */
PyObject *spcpy_raise(int rc, const char *detail);

/* ------------------------------------------------------------ heaps (heap.c) */

typedef struct {
    PyObject_HEAD
    struct spc_heap *heap;
    PyObject *flavour;       /* the Python Flavour given at construction */
    Py_buffer *views;        /* buffers the heap's items reference, released at dealloc */
    size_t n_views, cap_views;
    Py_ssize_t busy;         /* sends and packet walks in progress: no changes meanwhile */
    PyObject *weakreflist;
} SpcpyHeap;

extern PyTypeObject SpcpyHeap_Type;
extern PyTypeObject SpcpyPacketGenerator_Type;
#define SpcpyHeap_Check(o) PyObject_TypeCheck((o), &SpcpyHeap_Type)

/* Reads a Python Flavour (attributes heap_address_bits, bug_compat) into *f. */
int spcpy_flavour_from_py(PyObject *obj, struct spc_flavour *f);

/* ------------------------------------------------------------ heap references (heapref.c) */

typedef struct {
    PyObject_HEAD
    SpcpyHeap *heap;
    long long cnt;           /* -1 = automatic */
    unsigned int substream_index;
    double rate;
} SpcpyHeapReference;

/* A list root owns refs (a tuple of HeapReference) and the per-stream converted lists;
 * a slice points at its root and covers [first, first + count). */
struct spcpy_list_cache {
    uint64_t stream_serial;
    struct spc_heap_list *list;
    size_t *n_items;         /* each heap's item count when converted */
};

typedef struct SpcpyHeapReferenceList {
    PyObject_HEAD
    struct SpcpyHeapReferenceList *root; /* self for a root (not a counted reference) */
    PyObject *refs;          /* root: tuple of HeapReference; slice: NULL */
    Py_ssize_t first, count;
    /* Root only. Entries are freed only with the root (a send may be using one without
     * the GIL); a heap that gained or lost items since its conversion makes a new entry,
     * found first (the list is searched from its end). */
    struct spcpy_list_cache *cache;
    size_t n_cache;
} SpcpyHeapReferenceList;

extern PyTypeObject SpcpyHeapReference_Type;
extern PyTypeObject SpcpyHeapReferenceList_Type;

static inline struct spc_heap_ref spcpy_ref_of(const SpcpyHeapReference *r)
{
    struct spc_heap_ref ref = {r->heap->heap, r->cnt < 0 ? SPC_CNT_AUTO : (uint64_t)r->cnt,
                               (uint32_t)r->substream_index, r->rate};
    return ref;
}

/* The converted list of root l for stream s (identified by serial), built on first use
 * and again when a heap's item count changed. NULL with an exception set on error. */
struct spc_heap_list *spcpy_list_for(SpcpyHeapReferenceList *l, struct spc_stream *s,
                                     uint64_t serial);
/* Adds delta to the busy count of every heap of the list's slice. */
void spcpy_list_busy(SpcpyHeapReferenceList *l, Py_ssize_t delta);

/* ------------------------------------------------------------ streams (stream.c) */

extern PyTypeObject SpcpyStream_Type;

/* ------------------------------------------------------------ decoding (decode.c) */

extern PyTypeObject SpcpyInprocQueue_Type;
extern PyTypeObject SpcpyInprocReceiver_Type;
PyObject *spcpy_decode(PyObject *self, PyObject *args, PyObject *kw);
PyObject *spcpy_parse_descriptor(PyObject *self, PyObject *args, PyObject *kw);

#endif
