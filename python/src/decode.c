/* Reading streams back: the decoder over a byte string, descriptor parsing, and the
 * in-process queues with their receiver (for InprocStream round trips).
 *
 * A decoded heap is handed to Python as the tuple
 *   (cnt, complete, heap_address_bits, items, has_start, has_stop)
 * with items a list of (id, immediate, value, bytes) in pointer order; speadcast.recv
 * turns it into objects. */
#include "spcpy.h"

static PyObject *heap_tuple(const struct spc_decoded_heap *h)
{
    PyObject *items = PyList_New((Py_ssize_t)h->n_items);
    if (!items)
        return NULL;
    for (size_t i = 0; i < h->n_items; i++) {
        const struct spc_decoded_item *it = &h->items[i];
        PyObject *t = Py_BuildValue("(KOKy#)", (unsigned long long)it->id,
                                    it->immediate ? Py_True : Py_False,
                                    (unsigned long long)it->value, (const char *)it->data,
                                    (Py_ssize_t)it->len);
        if (!t) {
            Py_DECREF(items);
            return NULL;
        }
        PyList_SET_ITEM(items, (Py_ssize_t)i, t);
    }
    return Py_BuildValue("(KOINOO)", (unsigned long long)h->cnt, h->complete ? Py_True : Py_False,
                         h->flavour.heap_address_bits, items, h->has_start ? Py_True : Py_False,
                         h->has_stop ? Py_True : Py_False);
}

/* Pops every ready heap of dec onto list; returns 0 or -1 with an exception. */
static int pop_all(struct spc_decoder *dec, PyObject *list)
{
    struct spc_decoded_heap *h;
    while (spc_decoder_pop(dec, &h) == 1) {
        PyObject *t = heap_tuple(h);
        spc_decoded_heap_free(h);
        if (!t || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            return -1;
        }
        Py_DECREF(t);
    }
    return 0;
}

/* decode(data, bug_compat=0, max_heap_size=64 MiB, max_live_heaps=16): every heap of a
 * concatenated packet stream, incomplete ones last. A bad packet raises ValueError
 * naming its offset. */
PyObject *spcpy_decode(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *kwlist[] = {"data", "bug_compat", "max_heap_size", "max_live_heaps", NULL};
    Py_buffer data;
    unsigned int bug_compat = 0;
    Py_ssize_t max_heap = 64 << 20, max_live = 16;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|Inn", kwlist, &data, &bug_compat, &max_heap,
                                     &max_live))
        return NULL;
    struct spc_decoder_config cfg = SPC_DECODER_CONFIG_DEFAULT;
    cfg.max_heap_size = (size_t)max_heap;
    cfg.max_live_heaps = (size_t)max_live;
    cfg.bug_compat = bug_compat;
    struct spc_decoder *dec;
    int rc = spc_decoder_create(&dec, &cfg);
    if (rc < 0) {
        PyBuffer_Release(&data);
        return spcpy_raise(rc, "decoder configuration");
    }
    PyObject *out = PyList_New(0);
    size_t off = 0;
    while (out && off < (size_t)data.len) {
        size_t used = 0;
        rc = spc_decoder_add_packet(dec, (const uint8_t *)data.buf + off, (size_t)data.len - off,
                                    &used);
        if (rc < 0 || used == 0) {
            char detail[64];
            snprintf(detail, sizeof detail, "packet at byte %zu", off);
            spcpy_raise(rc < 0 ? rc : -SPC_ETRUNCATED, detail);
            Py_CLEAR(out);
            break;
        }
        off += used;
        if (pop_all(dec, out) < 0)
            Py_CLEAR(out);
    }
    if (out) {
        spc_decoder_flush(dec);
        if (pop_all(dec, out) < 0)
            Py_CLEAR(out);
    }
    spc_decoder_destroy(dec);
    PyBuffer_Release(&data);
    return out;
}

/* parse_descriptor(data, bug_compat=0): the value bytes of a decoded item 5 as
 * (id, name, description, shape, format, dtype, fortran_order); shape uses None for a
 * variable dimension, format is a list of (type, bits) or None, dtype the descr text. */
PyObject *spcpy_parse_descriptor(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *kwlist[] = {"data", "bug_compat", NULL};
    Py_buffer data;
    unsigned int bug_compat = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|I", kwlist, &data, &bug_compat))
        return NULL;
    struct spc_decoded_item item = {SPC_ID_DESCRIPTOR, false, 0, data.buf, (size_t)data.len};
    struct spc_flavour f = {40, bug_compat};
    struct spc_descriptor_info *info;
    int rc = spc_descriptor_parse(&item, &f, &info);
    PyBuffer_Release(&data);
    if (rc < 0)
        return spcpy_raise(rc, NULL);
    PyObject *shape = PyTuple_New((Py_ssize_t)info->n_dims), *format = NULL, *out = NULL;
    for (size_t i = 0; shape && i < info->n_dims; i++) {
        PyObject *d = info->shape[i] == SPC_DIM_VARIABLE ? (Py_INCREF(Py_None), Py_None)
                                                          : PyLong_FromLongLong(info->shape[i]);
        PyTuple_SET_ITEM(shape, (Py_ssize_t)i, d);
    }
    if (info->n_format) {
        format = PyList_New((Py_ssize_t)info->n_format);
        for (size_t i = 0; format && i < info->n_format; i++)
            PyList_SET_ITEM(format, (Py_ssize_t)i,
                            Py_BuildValue("(CI)", info->format[i].type, info->format[i].bits));
    } else {
        format = Py_None;
        Py_INCREF(format);
    }
    if (shape && format)
        out = Py_BuildValue("(KssOOzO)", (unsigned long long)info->id, info->name,
                            info->description, shape, format, info->dtype,
                            info->fortran_order ? Py_True : Py_False);
    Py_XDECREF(shape);
    Py_XDECREF(format);
    spc_descriptor_info_free(info);
    return out;
}

/* ------------------------------------------------------------ InprocQueue */

typedef struct {
    PyObject_HEAD
    struct spc_inproc_queue *q;
} SpcpyInprocQueue;

static int iq_init(SpcpyInprocQueue *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", NULL};
    const char *name;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s", kwlist, &name))
        return -1;
    if (self->q) {
        PyErr_SetString(PyExc_RuntimeError, "InprocQueue already initialised");
        return -1;
    }
    int rc = spc_inproc_queue_open(&self->q, name);
    if (rc < 0) {
        spcpy_raise(rc, "opening the in-process queue");
        return -1;
    }
    return 0;
}

static void iq_dealloc(SpcpyInprocQueue *self)
{
    spc_inproc_queue_close(self->q);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int iq_ready(SpcpyInprocQueue *self)
{
    if (!self->q) {
        PyErr_SetString(PyExc_RuntimeError, "InprocQueue.__init__ was not called");
        return -1;
    }
    return 0;
}

static PyObject *iq_stop(SpcpyInprocQueue *self, PyObject *unused)
{
    (void)unused;
    if (iq_ready(self) < 0)
        return NULL;
    spc_inproc_queue_stop(self->q);
    Py_RETURN_NONE;
}

static PyObject *iq_pop(SpcpyInprocQueue *self, PyObject *args)
{
    int timeout_ms = 0;
    if (!PyArg_ParseTuple(args, "|i", &timeout_ms) || iq_ready(self) < 0)
        return NULL;
    struct spc_inproc_packet *pkt;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = spc_inproc_queue_pop(self->q, &pkt, timeout_ms);
    Py_END_ALLOW_THREADS
    if (rc == -EAGAIN || rc == -ETIMEDOUT || rc == -SPC_ESTOPPED)
        Py_RETURN_NONE;
    if (rc < 0)
        return spcpy_raise(rc, NULL);
    PyObject *b = PyBytes_FromStringAndSize((const char *)pkt->data, (Py_ssize_t)pkt->size);
    spc_inproc_packet_free(pkt);
    return b;
}

static PyObject *iq_get_name(SpcpyInprocQueue *self, void *c)
{
    (void)c;
    if (iq_ready(self) < 0)
        return NULL;
    return PyUnicode_FromString(spc_inproc_queue_name(self->q));
}

static PyObject *iq_get_stopped(SpcpyInprocQueue *self, void *c)
{
    (void)c;
    if (iq_ready(self) < 0)
        return NULL;
    return PyBool_FromLong(spc_inproc_queue_stopped(self->q));
}

static Py_ssize_t iq_len(SpcpyInprocQueue *self)
{
    return self->q ? (Py_ssize_t)spc_inproc_queue_length(self->q) : 0;
}

static PyMethodDef iq_methods[] = {
    {"stop", (PyCFunction)iq_stop, METH_NOARGS, "stop the queue: receivers see the end"},
    {"pop", (PyCFunction)iq_pop, METH_VARARGS,
     "pop(timeout_ms=0) -> one packet as bytes, or None when none came (or stopped)"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef iq_getset[] = {
    {"name", (getter)iq_get_name, NULL, "the queue's name", NULL},
    {"stopped", (getter)iq_get_stopped, NULL, "whether stop() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PySequenceMethods iq_seq = {.sq_length = (lenfunc)iq_len};

PyTypeObject SpcpyInprocQueue_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "speadcast._speadcast.InprocQueue",
    .tp_basicsize = sizeof(SpcpyInprocQueue),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "InprocQueue(name): a reference to the named in-process packet queue",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)iq_init,
    .tp_dealloc = (destructor)iq_dealloc,
    .tp_methods = iq_methods,
    .tp_getset = iq_getset,
    .tp_as_sequence = &iq_seq,
};

/* ------------------------------------------------------------ InprocReceiver */

typedef struct {
    PyObject_HEAD
    struct spc_inproc_receiver *r;
    int busy; /* a next() runs without the GIL */
} SpcpyInprocReceiver;

static int ir_init(SpcpyInprocReceiver *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "bug_compat", "max_heap_size", NULL};
    const char *name;
    unsigned int bug_compat = 0;
    Py_ssize_t max_heap = 64 << 20;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|In", kwlist, &name, &bug_compat, &max_heap))
        return -1;
    if (self->r) {
        PyErr_SetString(PyExc_RuntimeError, "InprocReceiver already initialised");
        return -1;
    }
    struct spc_decoder_config cfg = SPC_DECODER_CONFIG_DEFAULT;
    cfg.bug_compat = bug_compat;
    cfg.max_heap_size = (size_t)max_heap;
    int rc = spc_inproc_receiver_create(&self->r, name, &cfg);
    if (rc < 0) {
        spcpy_raise(rc, "creating the in-process receiver");
        return -1;
    }
    return 0;
}

static void ir_dealloc(SpcpyInprocReceiver *self)
{
    spc_inproc_receiver_destroy(self->r);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* next(timeout_ms=-1) -> heap tuple, or None at the end of the stream; TimeoutError. */
static PyObject *ir_next(SpcpyInprocReceiver *self, PyObject *args)
{
    int timeout_ms = -1;
    if (!PyArg_ParseTuple(args, "|i", &timeout_ms))
        return NULL;
    if (!self->r || self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "receiver not initialised or in use by another thread");
        return NULL;
    }
    struct spc_decoded_heap *h;
    int rc;
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    rc = spc_inproc_receiver_next(self->r, &h, timeout_ms);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (rc == -SPC_ESTOPPED)
        Py_RETURN_NONE;
    if (rc == -EAGAIN || rc == -ETIMEDOUT) {
        PyErr_SetString(PyExc_TimeoutError, "no heap arrived in time");
        return NULL;
    }
    if (rc < 0)
        return spcpy_raise(rc, NULL);
    PyObject *t = heap_tuple(h);
    spc_decoded_heap_free(h);
    return t;
}

static PyObject *ir_stop(SpcpyInprocReceiver *self, PyObject *unused)
{
    (void)unused;
    if (!self->r) {
        PyErr_SetString(PyExc_RuntimeError, "InprocReceiver.__init__ was not called");
        return NULL;
    }
    spc_inproc_queue_stop(spc_inproc_receiver_queue(self->r));
    Py_RETURN_NONE;
}

static PyMethodDef ir_methods[] = {
    {"next", (PyCFunction)ir_next, METH_VARARGS,
     "next(timeout_ms=-1) -> heap tuple, None at the end; TimeoutError"},
    {"stop", (PyCFunction)ir_stop, METH_NOARGS, "stop the receiver's queue"},
    {NULL, NULL, 0, NULL}};

PyTypeObject SpcpyInprocReceiver_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "speadcast._speadcast.InprocReceiver",
    .tp_basicsize = sizeof(SpcpyInprocReceiver),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "InprocReceiver(name, bug_compat=0): heaps of the named queue, decoded",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ir_init,
    .tp_dealloc = (destructor)ir_dealloc,
    .tp_methods = ir_methods,
};
