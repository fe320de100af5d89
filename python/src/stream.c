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
#include "stream_internal.h"

#include <structmember.h>

static uint64_t next_serial = 1; /* guarded by the GIL */

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
    self->blocking = spc_stream_get_config(s)->on_full == SPC_ON_FULL_BLOCK;
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
    self->completion_queue = cq;
    self->cpu = cpu;
    self->serial = next_serial++;
    Py_INCREF(keep);
    Py_XSETREF(self->keep, keep);
    return 0;
}

int spcpy_stream_ready(SpcpyStream *self)
{
    if (!self->s || self->closing) {
        PyErr_SetString(PyExc_ValueError, "the stream is closed");
        return -1;
    }
    return 0;
}

PyObject *spcpy_stream_err(SpcpyStream *self, int rc)
{
    char detail[512] = "";
    if (self->s)
        spc_stream_last_error(self->s, detail, sizeof detail);
    return spcpy_raise(rc, detail);
}

PyObject *spcpy_stream_err_obj(SpcpyStream *self, int rc)
{
    char detail[512] = "";
    if (self->s)
        spc_stream_last_error(self->s, detail, sizeof detail);
    return spcpy_error(rc, detail);
}

/* Flushes, then (asyncio streams) drains, so no completion token is left behind. */
static int stream_flush_(SpcpyStream *self)
{
    int rc;
    self->calls++;
    Py_BEGIN_ALLOW_THREADS
    rc = spc_stream_flush(self->s);
    Py_END_ALLOW_THREADS
    self->calls--;
    if (rc < 0) {
        spcpy_stream_err(self, rc);
        return -1;
    }
    if (self->create_future)
        spcpy_stream_drain_all(self);
    return 0;
}

static void stream_close_(SpcpyStream *self)
{
    if (!self->s)
        return;
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    /* From here no call can start (they check closing with the GIL held), and none was
     * running (close() refuses then), so nothing runs beside spc_stream_close. */
    self->closing = true;
    if (stream_flush_(self) < 0)
        PyErr_WriteUnraisable((PyObject *)self);
    /* Detached before the GIL is released: other threads see a closed stream. */
    struct spc_stream *s = self->s;
    self->s = NULL;
    self->closing = false;
    Py_BEGIN_ALLOW_THREADS
    spc_stream_close(s);
    Py_END_ALLOW_THREADS
    for (size_t i = 0; i < self->n_regions; i++)
        PyBuffer_Release(&self->regions[i]);
    PyMem_Free(self->regions);
    self->regions = NULL;
    self->n_regions = 0;
    /* What the transport depended on goes with it (e.g. our socket duplicate, so the
     * peer of a TCP stream sees the end of the connection now). */
    Py_CLEAR(self->keep);
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

int spcpy_stream_flavour_check(SpcpyStream *self, SpcpyHeap *heap)
{
    const struct spc_flavour *f = spc_heap_flavour(heap->heap);
    bool same = f->heap_address_bits == self->flavour.heap_address_bits &&
                f->bug_compat == self->flavour.bug_compat;
    if (!same && self->adaptive && !self->used) {
        PyObject *r = PyObject_CallMethod((PyObject *)self, "_adopt_flavour", "O",
                                          heap->flavour);
        if (!r)
            return -1;
        Py_DECREF(r);
        same = f->heap_address_bits == self->flavour.heap_address_bits &&
               f->bug_compat == self->flavour.bug_compat;
    }
    if (!same) {
        PyErr_Format(PyExc_ValueError,
                     "the heap's flavour (heap_address_bits %u, bug_compat %u) differs from the "
                     "stream's (%u, %u), which is fixed by its first send or by "
                     "StreamConfig(flavour=...)",
                     f->heap_address_bits, f->bug_compat, self->flavour.heap_address_bits,
                     self->flavour.bug_compat);
        return -1;
    }
    self->used = true;
    return 0;
}

/* _reopen(config_json): replaces the stream, unused so far, by one opened from the new
 * config with the same options; the cnt sequence and registered memory carry over. */
static PyObject *stream_reopen(SpcpyStream *self, PyObject *arg)
{
    const char *json = PyUnicode_AsUTF8(arg);
    if (!json || spcpy_stream_ready(self) < 0)
        return NULL;
    if (self->used || self->calls > 0 || self->async_sent > 0) {
        PyErr_SetString(PyExc_RuntimeError, "a stream that has sent cannot be reopened");
        return NULL;
    }
    struct spc_stream *old = self->s;
    struct spc_flavour old_flavour = self->flavour;
    struct spc_stream_options opts = SPC_STREAM_OPTIONS_DEFAULT;
    opts.cpu = self->cpu;
    opts.completion_queue = self->completion_queue;
    if (stream_open_(self, json, NULL, &opts) < 0) {
        self->s = old;
        self->flavour = old_flavour;
        return NULL;
    }
    struct spc_stream *fresh = self->s;
    int rc = self->cnt_set ? spc_stream_set_cnt_sequence(fresh, self->cnt_next, self->cnt_step)
                           : 0;
    for (size_t i = 0; rc >= 0 && i < self->n_regions; i++) {
        struct spc_stream_memory *mem;
        if (self->regions[i].len > 0)
            rc = spc_stream_register_memory(fresh, self->regions[i].buf,
                                            (size_t)self->regions[i].len, &mem);
    }
    if (rc < 0) {
        PyObject *e = spcpy_stream_err_obj(self, rc);
        Py_BEGIN_ALLOW_THREADS
        spc_stream_close(fresh);
        Py_END_ALLOW_THREADS
        self->s = old;
        self->flavour = old_flavour;
        if (e) {
            PyErr_SetObject((PyObject *)Py_TYPE(e), e);
            Py_DECREF(e);
        }
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    spc_stream_close(old);
    Py_END_ALLOW_THREADS
    self->serial = next_serial++;
    Py_RETURN_NONE;
}

static PyObject *stream_get_adaptive(SpcpyStream *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->adaptive && !self->used);
}

static int stream_set_adaptive(SpcpyStream *self, PyObject *v, void *c)
{
    (void)c;
    int on = v ? PyObject_IsTrue(v) : 0;
    if (on < 0)
        return -1;
    self->adaptive = on;
    return 0;
}

/* ------------------------------------------------------------ sync sends */

static PyObject *stream_send_heap(SpcpyStream *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    SpcpyHeap *heap;
    struct spc_heap_ref ref;
    if (spcpy_heap_arg(self, args, nargs, kwnames, &heap, &ref) < 0)
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
        return spcpy_stream_err(self, rc);
    return PyLong_FromUnsignedLongLong(bytes);
}

static PyObject *stream_send_heaps(SpcpyStream *self, PyObject *args, PyObject *kw)
{
    struct spcpy_group g;
    if (spcpy_group_arg(self, args, kw, &g) < 0)
        return NULL;
    uint64_t bytes = 0;
    int rc;
    spcpy_group_busy(&g, 1);
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
    spcpy_group_busy(&g, -1);
    spcpy_group_free(&g);
    if (rc < 0)
        return spcpy_stream_err(self, rc);
    return PyLong_FromUnsignedLongLong(bytes);
}

static PyObject *stream_flush(SpcpyStream *self, PyObject *unused)
{
    (void)unused;
    if (spcpy_stream_ready(self) < 0 || stream_flush_(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ settings and queries */

static PyObject *stream_set_cnt_sequence(SpcpyStream *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"next", "step", NULL};
    unsigned long long next, step;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "KK", kwlist, &next, &step))
        return NULL;
    if (spcpy_stream_ready(self) < 0)
        return NULL;
    int rc = spc_stream_set_cnt_sequence(self->s, next, step);
    if (rc < 0)
        return spcpy_raise(rc, "cnt sequence step cannot be 0");
    self->cnt_set = true;
    self->cnt_next = next;
    self->cnt_step = step;
    Py_RETURN_NONE;
}

static PyObject *stream_getvalue(SpcpyStream *self, PyObject *unused)
{
    (void)unused;
    if (spcpy_stream_ready(self) < 0 || stream_flush_(self) < 0)
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
    if (spcpy_stream_ready(self) < 0)
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
    if (spcpy_stream_ready(self) < 0)
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
        return spcpy_stream_err(self, rc);
    }
    self->n_regions++;
    Py_RETURN_NONE;
}

static PyObject *stream_get_num_substreams(SpcpyStream *self, void *c)
{
    (void)c;
    if (spcpy_stream_ready(self) < 0)
        return NULL;
    return PyLong_FromUnsignedLong(spc_stream_n_substreams(self->s));
}

static PyObject *stream_get_config_dict(SpcpyStream *self, void *c)
{
    (void)c;
    if (spcpy_stream_ready(self) < 0)
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
    if (spcpy_stream_ready(self) < 0)
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
    {"async_send_heap", FN(spcpy_stream_async_send_heap), METH_FASTCALL | METH_KEYWORDS,
     "async_send_heap(heap, cnt=-1, substream_index=0, rate=-1.0) -> future of bytes sent"},
    {"async_send_heaps", FN(spcpy_stream_async_send_heaps), KW,
     "async_send_heaps(heaps, mode) -> future of bytes sent"},
    {"async_flush", FN(spcpy_stream_async_flush), METH_NOARGS,
     "future resolved once every heap queued before the call has completed"},
    {"flush", FN(stream_flush), METH_NOARGS, "wait until every queued heap has completed"},
    {"close", FN(stream_close), METH_NOARGS, "flush and close the stream (idempotent)"},
    {"set_cnt_sequence", FN(stream_set_cnt_sequence), KW, "set_cnt_sequence(next, step)"},
    {"getvalue", FN(stream_getvalue), METH_NOARGS, "bytes transport: the packets sent so far"},
    {"reset", FN(stream_reset), METH_NOARGS, "bytes transport: empty the buffer"},
    {"_reopen", FN(stream_reopen), METH_O,
     "replace the unused stream by one opened from a new config (flavour adoption)"},
    {"register_memory", FN(stream_register_memory), METH_O,
     "register a buffer with the transport (kept until close)"},
    {"_attach_loop", FN(spcpy_stream_attach_loop), METH_O, "asyncio: attach an event loop"},
    {"_process_completions", FN(spcpy_stream_process_completions), METH_NOARGS,
     "asyncio: resolve the futures of completed sends"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef stream_getset[] = {
    {"num_substreams", (getter)stream_get_num_substreams, NULL, "number of substreams", NULL},
    {"_adaptive", (getter)stream_get_adaptive, (setter)stream_set_adaptive,
     "the first heap's flavour may still become the stream's", NULL},
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
