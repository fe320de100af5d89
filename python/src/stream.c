/* Stream: one spc_stream opened from a JSON config (or a config file), with spead2's
 * sync sends, asyncio sends completed through the completion queue, flush, cnt
 * sequence and the bytes transport's buffer. The Python classes UdpStream, TcpStream,
 * ... (speadcast/send) subclass it and only build the config.
 *
 * Lifetimes: every send holds a reference to its heap (or heap list) until the send
 * completes: the calling frame for a sync send, the completion token (future, heap) for
 * an async send, which the completion drain releases. Heaps dropped by Python while in
 * flight therefore stay alive until sent. calls counts methods running without the GIL;
 * close() refuses while any runs. */
#include "spcpy.h"

#include <structmember.h>

typedef struct {
    PyObject_HEAD
    struct spc_stream *s;
    uint64_t serial;
    int calls;                /* methods in progress with the GIL released */
    struct spc_flavour flavour;
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

static uint64_t next_serial = 1; /* guarded by the GIL */
/* Interned method names and asyncio.InvalidStateError, set up on first attach. */
static PyObject *str_set_result, *str_set_exception, *invalid_state;

static int stream_open_(SpcpyStream *self, const char *json, const char *path,
                        const struct spc_stream_options *opts)
{
    char err[1024] = "";
    struct spc_stream *s = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    if (json) {
        rc = spc_stream_open_json(&s, json, opts, err, sizeof err);
    } else {
        struct spc_config *cfg = NULL;
        rc = spc_config_load(&cfg, path, err, sizeof err);
        if (rc >= 0)
            rc = spc_stream_open(&s, cfg, opts, err, sizeof err);
        spc_config_destroy(cfg);
    }
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        /* The config text already names the JSON path; keep it as the message. */
        spcpy_raise(rc, err);
        return -1;
    }
    self->s = s;
    self->flavour = spc_stream_get_config(s)->flavour;
    return 0;
}

/* Stream(config=None, *, path=None, completion_queue=False, cpu=-1, keep=None) */
static int stream_init(SpcpyStream *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"config", "path", "completion_queue", "cpu", "keep", NULL};
    const char *json = NULL, *path = NULL;
    int cq = 0, cpu = -1;
    PyObject *keep = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|z$zpiO", kwlist, &json, &path, &cq, &cpu,
                                     &keep))
        return -1;
    if (self->s) {
        PyErr_SetString(PyExc_RuntimeError, "stream already open");
        return -1;
    }
    if (!json == !path) {
        PyErr_SetString(PyExc_ValueError, "give exactly one of config and path");
        return -1;
    }
    struct spc_stream_options opts = SPC_STREAM_OPTIONS_DEFAULT;
    opts.cpu = cpu;
    opts.completion_queue = cq;
    if (stream_open_(self, json, path, &opts) < 0)
        return -1;
    self->serial = next_serial++;
    Py_INCREF(keep);
    Py_XSETREF(self->keep, keep);
    return 0;
}

static int stream_ready(SpcpyStream *self)
{
    if (!self->s) {
        PyErr_SetString(PyExc_ValueError, "the stream is closed");
        return -1;
    }
    return 0;
}

static PyObject *stream_err(SpcpyStream *self, int rc)
{
    char detail[512] = "";
    if (self->s)
        spc_stream_last_error(self->s, detail, sizeof detail);
    return spcpy_raise(rc, detail);
}

static PyObject *stream_err_obj(SpcpyStream *self, int rc)
{
    char detail[512] = "";
    if (self->s)
        spc_stream_last_error(self->s, detail, sizeof detail);
    return spcpy_error(rc, detail);
}

/* ------------------------------------------------------------ completions */

/* Resolves one async completion: token is (future, keep-alive); status/bytes as drained. */
static int complete_token(SpcpyStream *self, PyObject *token, int status, uint64_t bytes)
{
    PyObject *fut = PyTuple_GET_ITEM(token, 0), *obj = PyTuple_GET_ITEM(token, 1);
    if (SpcpyHeap_Check(obj))
        ((SpcpyHeap *)obj)->busy--;
    else if (PyObject_TypeCheck(obj, &SpcpyHeapReferenceList_Type))
        spcpy_list_busy((SpcpyHeapReferenceList *)obj, -1);
    else
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(obj); i++)
            ((SpcpyHeapReference *)PyTuple_GET_ITEM(obj, i))->heap->busy--;
    self->async_done++;
    PyObject *arg = status < 0 ? stream_err_obj(self, status)
                               : PyLong_FromUnsignedLongLong(bytes);
    PyObject *r = arg ? PyObject_CallMethodOneArg(fut, status < 0 ? str_set_exception
                                                                  : str_set_result, arg)
                      : NULL;
    Py_XDECREF(arg);
    Py_DECREF(token);
    if (r) {
        Py_DECREF(r);
        return 0;
    }
    /* A future the caller cancelled meanwhile refuses a result: not an error. */
    if (invalid_state && PyErr_ExceptionMatches(invalid_state)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
}

static int resolve_flush_waiters(SpcpyStream *self)
{
    if (!self->flush_waiters)
        return 0;
    Py_ssize_t n = PyList_GET_SIZE(self->flush_waiters), kept = 0;
    PyObject *rest = PyList_New(0);
    if (!rest)
        return -1;
    int ret = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = PyList_GET_ITEM(self->flush_waiters, i);
        unsigned long long target = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(w, 0));
        if (target <= self->async_done) {
            PyObject *fut = PyTuple_GET_ITEM(w, 1);
            PyObject *done = PyObject_CallMethod(fut, "done", NULL);
            if (done && !PyObject_IsTrue(done)) {
                PyObject *r = PyObject_CallMethod(fut, "set_result", "O", Py_None);
                if (!r)
                    ret = -1;
                Py_XDECREF(r);
            }
            Py_XDECREF(done);
        } else {
            PyList_Append(rest, w);
            kept++;
        }
    }
    Py_SETREF(self->flush_waiters, rest);
    return ret;
}

/* Drains every queued completion. With the GIL held; never blocks. */
static int drain_all(SpcpyStream *self)
{
    struct spc_stream_completion c[64];
    int n, ret = 0;
    while ((n = spc_stream_drain(self->s, c, 64)) > 0) {
        for (int i = 0; i < n; i++)
            if (complete_token(self, (PyObject *)c[i].user, c[i].status, c[i].bytes) < 0)
                ret = -1;
        if (n < 64)
            break;
    }
    if (resolve_flush_waiters(self) < 0)
        ret = -1;
    return ret;
}

static PyObject *stream_process_completions(SpcpyStream *self, PyObject *unused)
{
    (void)unused;
    if (!self->s || !self->create_future)
        Py_RETURN_NONE;
    if (drain_all(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Flushes, then (async streams) drains, so no token is left behind. */
static int stream_flush_(SpcpyStream *self)
{
    int rc;
    self->calls++;
    Py_BEGIN_ALLOW_THREADS
    rc = spc_stream_flush(self->s);
    Py_END_ALLOW_THREADS
    self->calls--;
    if (rc < 0) {
        stream_err(self, rc);
        return -1;
    }
    if (self->create_future && drain_all(self) < 0)
        return -1;
    return 0;
}

static void stream_close_(SpcpyStream *self)
{
    if (!self->s)
        return;
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    if (stream_flush_(self) < 0)
        PyErr_WriteUnraisable((PyObject *)self);
    struct spc_stream *s = self->s;
    Py_BEGIN_ALLOW_THREADS
    spc_stream_close(s);
    Py_END_ALLOW_THREADS
    self->s = NULL;
    for (size_t i = 0; i < self->n_regions; i++)
        PyBuffer_Release(&self->regions[i]);
    PyMem_Free(self->regions);
    self->regions = NULL;
    self->n_regions = 0;
    PyErr_Restore(exc_type, exc_value, exc_tb);
}

static PyObject *stream_close(SpcpyStream *self, PyObject *unused)
{
    (void)unused;
    if (self->calls > 0) {
        PyErr_SetString(PyExc_RuntimeError, "close() while another thread uses the stream");
        return NULL;
    }
    stream_close_(self);
    Py_RETURN_NONE;
}

static void stream_dealloc(SpcpyStream *self)
{
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    stream_close_(self);
    Py_XDECREF(self->create_future);
    Py_XDECREF(self->flush_waiters);
    Py_XDECREF(self->keep);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ------------------------------------------------------------ argument parsing */

/* (heap, cnt=-1, substream_index=0, rate=-1.0), positional or keyword, parsed by hand
 * from a vectorcall: this runs once per heap sent, and the generic parser costs more
 * than the send itself. */
static int heap_arg(SpcpyStream *self, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames, SpcpyHeap **heap, struct spc_heap_ref *ref)
{
    static const char *const names[] = {"heap", "cnt", "substream_index", "rate"};
    PyObject *v[4] = {NULL, NULL, NULL, NULL};
    if (nargs > 4) {
        PyErr_Format(PyExc_TypeError, "send takes at most 4 arguments (%zd given)", nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        v[i] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, k));
        if (!name)
            return -1;
        int j = 0;
        while (j < 4 && strcmp(name, names[j]) != 0)
            j++;
        if (j == 4 || v[j]) {
            PyErr_Format(PyExc_TypeError, j == 4 ? "unexpected keyword argument '%s'"
                                                 : "argument '%s' given twice", name);
            return -1;
        }
        v[j] = args[nargs + k];
    }
    if (!v[0] || !PyObject_TypeCheck(v[0], &SpcpyHeap_Type)) {
        PyErr_SetString(PyExc_TypeError, "heap must be a speadcast.send.Heap");
        return -1;
    }
    long long cnt = v[1] ? PyLong_AsLongLong(v[1]) : -1;
    long long sub = v[2] ? PyLong_AsLongLong(v[2]) : 0;
    double rate = v[3] ? PyFloat_AsDouble(v[3]) : -1.0;
    if (PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            return spcpy_raise(-SPC_EHEAP_CNT, "cnt or substream_index too large"), -1;
        }
        return -1;
    }
    if (stream_ready(self) < 0)
        return -1;
    *heap = (SpcpyHeap *)v[0];
    if (!(*heap)->heap) {
        PyErr_SetString(PyExc_RuntimeError, "Heap.__init__ was not called");
        return -1;
    }
    if (sub < 0 || sub > UINT32_MAX) {
        PyErr_Format(PyExc_ValueError, "substream_index %lld is out of range", sub);
        return -1;
    }
    const struct spc_flavour *f = spc_heap_flavour((*heap)->heap);
    if (f->heap_address_bits != self->flavour.heap_address_bits ||
        f->bug_compat != self->flavour.bug_compat) {
        PyErr_Format(PyExc_ValueError,
                     "the heap's flavour (heap_address_bits %u, bug_compat %u) differs from the "
                     "stream's (%u, %u): give the stream StreamConfig(flavour=...)",
                     f->heap_address_bits, f->bug_compat, self->flavour.heap_address_bits,
                     self->flavour.bug_compat);
        return -1;
    }
    *ref = (struct spc_heap_ref){(*heap)->heap, cnt < 0 ? SPC_CNT_AUTO : (uint64_t)cnt,
                                 (uint32_t)sub, rate};
    return 0;
}

/* A group argument: a HeapReferenceList, or any sequence of HeapReference (converted
 * to a tuple that the send keeps). *keep gets a new reference to what must live until
 * the send completes; refs (PyMem, caller frees) is set for a sequence, list for a
 * HeapReferenceList. */
struct group {
    PyObject *keep;
    struct spc_heap_ref *refs;
    size_t n;
    SpcpyHeapReferenceList *hrl;
    struct spc_heap_list *list;
    int mode;
};

/* spead2 raises OSError(EINVAL) for an empty group. */
static int raise_empty(void)
{
    PyObject *e = PyObject_CallFunction(PyExc_OSError, "is", EINVAL,
                                        "send_heaps needs at least one heap");
    if (e) {
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
    }
    return -1;
}

static int group_arg(SpcpyStream *self, PyObject *args, PyObject *kw, struct group *g)
{
    static char *kwlist[] = {"heaps", "mode", NULL};
    PyObject *heaps;
    int mode = SPC_GROUP_ROUND_ROBIN;
    memset(g, 0, sizeof *g);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|i", kwlist, &heaps, &mode))
        return -1;
    if (stream_ready(self) < 0)
        return -1;
    if (mode != SPC_GROUP_SERIAL && mode != SPC_GROUP_ROUND_ROBIN) {
        PyErr_Format(PyExc_ValueError, "mode %d is not a GroupMode", mode);
        return -1;
    }
    g->mode = mode;
    if (PyObject_TypeCheck(heaps, &SpcpyHeapReferenceList_Type)) {
        g->hrl = (SpcpyHeapReferenceList *)heaps;
        if (!g->hrl->root) {
            PyErr_SetString(PyExc_RuntimeError, "HeapReferenceList.__init__ was not called");
            return -1;
        }
        if (g->hrl->count == 0)
            return raise_empty();
        if (!(g->list = spcpy_list_for(g->hrl, self->s, self->serial)))
            return -1;
        Py_INCREF(heaps);
        g->keep = heaps;
        g->n = (size_t)g->hrl->count;
        return 0;
    }
    PyObject *t = PySequence_Tuple(heaps);
    if (!t)
        return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(t);
    if (n == 0) {
        Py_DECREF(t);
        return raise_empty();
    }
    g->refs = PyMem_Calloc((size_t)n, sizeof(*g->refs));
    if (!g->refs) {
        Py_DECREF(t);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *r = PyTuple_GET_ITEM(t, i);
        if (!PyObject_TypeCheck(r, &SpcpyHeapReference_Type)) {
            PyErr_Format(PyExc_TypeError, "heaps[%zd] is not a HeapReference", i);
            PyMem_Free(g->refs);
            g->refs = NULL;
            Py_DECREF(t);
            return -1;
        }
        g->refs[i] = spcpy_ref_of((SpcpyHeapReference *)r);
    }
    g->keep = t;
    g->n = (size_t)n;
    return 0;
}

static void group_busy(struct group *g, Py_ssize_t delta)
{
    if (g->hrl) {
        spcpy_list_busy(g->hrl, delta);
        return;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(g->keep); i++)
        ((SpcpyHeapReference *)PyTuple_GET_ITEM(g->keep, i))->heap->busy += delta;
}

static int group_send(SpcpyStream *self, struct group *g, spc_send_callback cb, void *user)
{
    if (g->hrl)
        return spc_stream_send_list(self->s, g->list, (size_t)g->hrl->first, g->n,
                                    (enum spc_group_mode)g->mode, cb, user);
    return spc_stream_send_heaps(self->s, g->refs, g->n, (enum spc_group_mode)g->mode, cb, user);
}

static void group_free(struct group *g)
{
    PyMem_Free(g->refs);
    Py_XDECREF(g->keep);
}

/* ------------------------------------------------------------ sync sends */

static PyObject *stream_send_heap(SpcpyStream *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    SpcpyHeap *heap;
    struct spc_heap_ref ref;
    if (heap_arg(self, args, nargs, kwnames, &heap, &ref) < 0)
        return NULL;
    uint64_t bytes = 0;
    int rc;
    heap->busy++;
    self->calls++;
    Py_BEGIN_ALLOW_THREADS
    rc = spc_stream_send_sync(self->s, &ref, &bytes);
    Py_END_ALLOW_THREADS
    self->calls--;
    heap->busy--;
    if (rc < 0)
        return stream_err(self, rc);
    return PyLong_FromUnsignedLongLong(bytes);
}

static PyObject *stream_send_heaps(SpcpyStream *self, PyObject *args, PyObject *kw)
{
    struct group g;
    if (group_arg(self, args, kw, &g) < 0)
        return NULL;
    uint64_t bytes = 0;
    int rc;
    group_busy(&g, 1);
    self->calls++;
    Py_BEGIN_ALLOW_THREADS
    if (g.hrl)
        rc = spc_stream_send_list_sync(self->s, g.list, (size_t)g.hrl->first, g.n,
                                       (enum spc_group_mode)g.mode, &bytes);
    else
        rc = spc_stream_send_heaps_sync(self->s, g.refs, g.n, (enum spc_group_mode)g.mode,
                                        &bytes);
    Py_END_ALLOW_THREADS
    self->calls--;
    group_busy(&g, -1);
    group_free(&g);
    if (rc < 0)
        return stream_err(self, rc);
    return PyLong_FromUnsignedLongLong(bytes);
}

static PyObject *stream_flush(SpcpyStream *self, PyObject *unused)
{
    (void)unused;
    if (stream_ready(self) < 0 || stream_flush_(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ async sends */

static PyObject *new_future(SpcpyStream *self)
{
    if (!self->create_future) {
        PyErr_SetString(PyExc_RuntimeError, "not an asyncio stream (no event loop attached)");
        return NULL;
    }
    return PyObject_CallNoArgs(self->create_future);
}

/* Queues with token (future, keep) as the completion's user pointer; a refused send
 * sets the future's exception at once, as spead2 does. */
static PyObject *async_queue(SpcpyStream *self, PyObject *fut, PyObject *keep, int rc_send)
{
    (void)keep;
    if (rc_send < 0) {
        PyObject *e = stream_err_obj(self, rc_send);
        PyObject *r = e ? PyObject_CallMethod(fut, "set_exception", "O", e) : NULL;
        Py_XDECREF(e);
        if (!r) {
            Py_DECREF(fut);
            return NULL;
        }
        Py_DECREF(r);
        return fut;
    }
    self->async_sent++;
    return fut;
}

static PyObject *stream_async_send_heap(SpcpyStream *self, PyObject *const *args,
                                        Py_ssize_t nargs, PyObject *kwnames)
{
    SpcpyHeap *heap;
    struct spc_heap_ref ref;
    if (heap_arg(self, args, nargs, kwnames, &heap, &ref) < 0)
        return NULL;
    PyObject *fut = new_future(self);
    if (!fut)
        return NULL;
    PyObject *token = PyTuple_Pack(2, fut, (PyObject *)heap);
    if (!token) {
        Py_DECREF(fut);
        return NULL;
    }
    /* on_full "fail" for asyncio streams: never waits, so the GIL stays held. */
    int rc = spc_stream_send(self->s, &ref, NULL, token);
    if (rc < 0)
        Py_DECREF(token);
    else
        heap->busy++; /* token now belongs to the stream until drained */
    return async_queue(self, fut, (PyObject *)heap, rc);
}

static PyObject *stream_async_send_heaps(SpcpyStream *self, PyObject *args, PyObject *kw)
{
    struct group g;
    if (group_arg(self, args, kw, &g) < 0)
        return NULL;
    PyObject *fut = new_future(self);
    PyObject *token = fut ? PyTuple_Pack(2, fut, g.keep) : NULL;
    if (!token) {
        Py_XDECREF(fut);
        group_free(&g);
        return NULL;
    }
    int rc = group_send(self, &g, NULL, token);
    if (rc < 0)
        Py_DECREF(token);
    else
        group_busy(&g, 1);
    group_free(&g);
    return async_queue(self, fut, NULL, rc);
}

static PyObject *stream_async_flush(SpcpyStream *self, PyObject *unused)
{
    (void)unused;
    if (stream_ready(self) < 0)
        return NULL;
    PyObject *fut = new_future(self);
    if (!fut)
        return NULL;
    if (drain_all(self) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    if (self->async_done >= self->async_sent) {
        PyObject *r = PyObject_CallMethod(fut, "set_result", "O", Py_None);
        if (!r) {
            Py_DECREF(fut);
            return NULL;
        }
        Py_DECREF(r);
        return fut;
    }
    PyObject *w = Py_BuildValue("(KO)", (unsigned long long)self->async_sent, fut);
    if (!w || PyList_Append(self->flush_waiters, w) < 0) {
        Py_XDECREF(w);
        Py_DECREF(fut);
        return NULL;
    }
    Py_DECREF(w);
    return fut;
}

/* _attach_loop(loop): asyncio streams call this once; completions then resolve
 * futures made by loop.create_future. Returns the completion fd to watch. */
static PyObject *stream_attach_loop(SpcpyStream *self, PyObject *loop)
{
    if (stream_ready(self) < 0)
        return NULL;
    int fd = spc_stream_completion_fd(self->s);
    if (fd < 0)
        return spcpy_raise(fd, "the stream was opened without completion_queue");
    if (!invalid_state) {
        PyObject *mod = PyImport_ImportModule("asyncio");
        if (!mod)
            return NULL;
        invalid_state = PyObject_GetAttrString(mod, "InvalidStateError");
        Py_DECREF(mod);
        str_set_result = PyUnicode_InternFromString("set_result");
        str_set_exception = PyUnicode_InternFromString("set_exception");
        if (!invalid_state || !str_set_result || !str_set_exception)
            return NULL;
    }
    PyObject *cf = PyObject_GetAttrString(loop, "create_future");
    if (!cf)
        return NULL;
    Py_XSETREF(self->create_future, cf);
    if (!self->flush_waiters && !(self->flush_waiters = PyList_New(0)))
        return NULL;
    return PyLong_FromLong(fd);
}

/* ------------------------------------------------------------ settings and queries */

static PyObject *stream_set_cnt_sequence(SpcpyStream *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"next", "step", NULL};
    unsigned long long next, step;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "KK", kwlist, &next, &step))
        return NULL;
    if (stream_ready(self) < 0)
        return NULL;
    int rc = spc_stream_set_cnt_sequence(self->s, next, step);
    if (rc < 0)
        return spcpy_raise(rc, "cnt sequence step cannot be 0");
    Py_RETURN_NONE;
}

static PyObject *stream_getvalue(SpcpyStream *self, PyObject *unused)
{
    (void)unused;
    if (stream_ready(self) < 0 || stream_flush_(self) < 0)
        return NULL;
    const uint8_t *data;
    size_t len;
    int rc = spc_bytes_stream_data(self->s, &data, &len);
    if (rc < 0)
        return spcpy_raise(rc, "getvalue() needs the bytes transport");
    return PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)len);
}

static PyObject *stream_reset(SpcpyStream *self, PyObject *unused)
{
    (void)unused;
    if (stream_ready(self) < 0)
        return NULL;
    int rc = spc_bytes_stream_reset(self->s);
    if (rc < 0)
        return spcpy_raise(rc, "reset() needs the bytes transport");
    Py_RETURN_NONE;
}

/* register_memory(obj): registers a writable-or-not contiguous buffer with the
 * transport (ibverbs memory_regions); the view is held until close. */
static PyObject *stream_register_memory(SpcpyStream *self, PyObject *obj)
{
    if (stream_ready(self) < 0)
        return NULL;
    Py_buffer *grown = PyMem_Realloc(self->regions, (self->n_regions + 1) * sizeof(*grown));
    if (!grown)
        return PyErr_NoMemory();
    self->regions = grown;
    Py_buffer *v = &self->regions[self->n_regions];
    if (PyObject_GetBuffer(obj, v, PyBUF_ANY_CONTIGUOUS) < 0)
        return NULL;
    struct spc_stream_memory *mem;
    int rc = v->len > 0 ? spc_stream_register_memory(self->s, v->buf, (size_t)v->len, &mem) : 0;
    if (rc < 0) {
        PyBuffer_Release(v);
        return stream_err(self, rc);
    }
    self->n_regions++;
    Py_RETURN_NONE;
}

static PyObject *stream_get_num_substreams(SpcpyStream *self, void *c)
{
    (void)c;
    if (stream_ready(self) < 0)
        return NULL;
    return PyLong_FromUnsignedLong(spc_stream_n_substreams(self->s));
}

static PyObject *stream_get_config_dict(SpcpyStream *self, void *c)
{
    (void)c;
    if (stream_ready(self) < 0)
        return NULL;
    const struct spc_stream_config *sc = spc_stream_get_config(self->s);
    return Py_BuildValue("{s:n,s:d,s:n,s:n,s:d,s:i,s:i,s:(II)}", "max_packet_size",
                         (Py_ssize_t)sc->max_packet_size, "rate", sc->rate, "burst_size",
                         (Py_ssize_t)sc->burst_size, "max_heaps", (Py_ssize_t)sc->max_heaps,
                         "burst_rate_ratio", sc->burst_rate_ratio, "rate_method",
                         (int)sc->rate_method, "on_full", (int)sc->on_full, "flavour",
                         sc->flavour.heap_address_bits, sc->flavour.bug_compat);
}

static PyObject *stream_get_stats(SpcpyStream *self, void *c)
{
    (void)c;
    if (stream_ready(self) < 0)
        return NULL;
    struct spc_stream_stats st = SPC_STREAM_STATS_INIT;
    spc_stream_get_stats(self->s, &st);
    return Py_BuildValue("{s:K,s:K,s:K,s:K}", "heaps", (unsigned long long)st.heaps, "packets",
                         (unsigned long long)st.packets, "bytes", (unsigned long long)st.bytes,
                         "batches", (unsigned long long)st.batches);
}

static PyObject *stream_get_closed(SpcpyStream *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->s == NULL);
}

static PyObject *stream_get_last_error(SpcpyStream *self, void *c)
{
    (void)c;
    char detail[512] = "";
    if (self->s)
        spc_stream_last_error(self->s, detail, sizeof detail);
    return PyUnicode_FromString(detail);
}

#define KW (METH_VARARGS | METH_KEYWORDS)
#define FN(f) ((PyCFunction)(void (*)(void))(f))
static PyMethodDef stream_methods[] = {
    {"send_heap", FN(stream_send_heap), METH_FASTCALL | METH_KEYWORDS,
     "send_heap(heap, cnt=-1, substream_index=0, rate=-1.0) -> bytes sent; waits"},
    {"send_heaps", FN(stream_send_heaps), KW,
     "send_heaps(heaps, mode) -> bytes sent; all or nothing; waits"},
    {"async_send_heap", FN(stream_async_send_heap), METH_FASTCALL | METH_KEYWORDS,
     "async_send_heap(heap, cnt=-1, substream_index=0, rate=-1.0) -> future of bytes sent"},
    {"async_send_heaps", FN(stream_async_send_heaps), KW,
     "async_send_heaps(heaps, mode) -> future of bytes sent"},
    {"async_flush", FN(stream_async_flush), METH_NOARGS,
     "future resolved once every heap queued before the call has completed"},
    {"flush", FN(stream_flush), METH_NOARGS, "wait until every queued heap has completed"},
    {"close", FN(stream_close), METH_NOARGS, "flush and close the stream (idempotent)"},
    {"set_cnt_sequence", FN(stream_set_cnt_sequence), KW, "set_cnt_sequence(next, step)"},
    {"getvalue", FN(stream_getvalue), METH_NOARGS, "bytes transport: the packets sent so far"},
    {"reset", FN(stream_reset), METH_NOARGS, "bytes transport: empty the buffer"},
    {"register_memory", FN(stream_register_memory), METH_O,
     "register a buffer with the transport (kept until close)"},
    {"_attach_loop", FN(stream_attach_loop), METH_O, "asyncio: attach an event loop"},
    {"_process_completions", FN(stream_process_completions), METH_NOARGS,
     "asyncio: resolve the futures of completed sends"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef stream_getset[] = {
    {"num_substreams", (getter)stream_get_num_substreams, NULL, "number of substreams", NULL},
    {"stream_config", (getter)stream_get_config_dict, NULL, "the stream section in use", NULL},
    {"stats", (getter)stream_get_stats, NULL, "counters since open", NULL},
    {"closed", (getter)stream_get_closed, NULL, "whether close() has run", NULL},
    {"last_error", (getter)stream_get_last_error, NULL, "the transport's last error text", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject SpcpyStream_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "speadcast._speadcast.Stream",
    .tp_basicsize = sizeof(SpcpyStream),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Stream(config_json, *, path=None, completion_queue=False, cpu=-1, keep=None)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)stream_init,
    .tp_dealloc = (destructor)stream_dealloc,
    .tp_methods = stream_methods,
    .tp_getset = stream_getset,
    .tp_weaklistoffset = offsetof(SpcpyStream, weakreflist),
};
