/* Heap (spead2.send.Heap) and PacketGenerator over spc_heap and spc_packetizer.
 *
 * Ownership: a Heap references its items' memory through Py_buffer views it holds
 * until it is freed (never copied); sends in flight hold a reference to the Heap, so
 * the views outlive every packet built from them. While busy > 0 (a send or a packet
 * walk in progress) the heap refuses changes, as the C heap must not change then. */
#include "spcpy.h"

#include <structmember.h>

int spcpy_flavour_from_py(PyObject *obj, struct spc_flavour *f)
{
    PyObject *hab = PyObject_GetAttrString(obj, "heap_address_bits");
    if (!hab)
        return -1;
    PyObject *bc = PyObject_GetAttrString(obj, "bug_compat");
    if (!bc) {
        Py_DECREF(hab);
        return -1;
    }
    long h = PyLong_AsLong(hab), b = PyLong_AsLong(bc);
    Py_DECREF(hab);
    Py_DECREF(bc);
    if (PyErr_Occurred())
        return -1;
    if (h < 0 || b < 0 || spc_flavour_init(f, (unsigned)h, (unsigned)b) < 0) {
        PyErr_Format(PyExc_ValueError, "invalid flavour: heap_address_bits %ld, bug_compat %ld",
                     h, b);
        return -1;
    }
    return 0;
}

static int heap_init(SpcpyHeap *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"flavour", NULL};
    PyObject *flavour = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O", kwlist, &flavour))
        return -1;
    if (self->heap) {
        PyErr_SetString(PyExc_RuntimeError, "Heap already initialised");
        return -1;
    }
    struct spc_flavour f;
    if (spcpy_flavour_from_py(flavour, &f) < 0)
        return -1;
    int rc = spc_heap_create(&self->heap, &f);
    if (rc < 0) {
        spcpy_raise(rc, NULL);
        return -1;
    }
    Py_INCREF(flavour);
    self->flavour = flavour;
    return 0;
}

static void heap_dealloc(SpcpyHeap *self)
{
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    spc_heap_destroy(self->heap);
    for (size_t i = 0; i < self->n_views; i++)
        PyBuffer_Release(&self->views[i]);
    PyMem_Free(self->views);
    Py_XDECREF(self->flavour);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int heap_ready(SpcpyHeap *self)
{
    if (!self->heap) {
        PyErr_SetString(PyExc_RuntimeError, "Heap.__init__ was not called");
        return -1;
    }
    if (self->busy > 0) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the heap is being sent: it cannot change until its sends complete");
        return -1;
    }
    return 0;
}

/* Keeps a view of obj (C or Fortran contiguous) in the heap; returns it or NULL. */
static Py_buffer *heap_keep_view(SpcpyHeap *self, PyObject *obj)
{
    if (self->n_views == self->cap_views) {
        size_t cap = self->cap_views ? self->cap_views * 2 : 4;
        Py_buffer *grown = PyMem_Realloc(self->views, cap * sizeof(*grown));
        if (!grown) {
            PyErr_NoMemory();
            return NULL;
        }
        self->views = grown;
        self->cap_views = cap;
    }
    Py_buffer *v = &self->views[self->n_views];
    if (PyObject_GetBuffer(obj, v, PyBUF_ANY_CONTIGUOUS) < 0)
        return NULL;
    self->n_views++;
    return v;
}

/* add_item(item): item.id, item.to_buffer() (any contiguous buffer, referenced) and
 * item.allow_immediate(), as spead2's Heap.add_item reads them. */
static PyObject *heap_add_item(SpcpyHeap *self, PyObject *item)
{
    if (heap_ready(self) < 0)
        return NULL;
    PyObject *id_obj = PyObject_GetAttrString(item, "id");
    if (!id_obj)
        return NULL;
    unsigned long long id = PyLong_AsUnsignedLongLong(id_obj);
    Py_DECREF(id_obj);
    if (PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, "Item ID out of range");
        }
        return NULL;
    }
    PyObject *buf = PyObject_CallMethod(item, "to_buffer", NULL);
    if (!buf)
        return NULL;
    PyObject *imm = PyObject_CallMethod(item, "allow_immediate", NULL);
    int allow = imm ? PyObject_IsTrue(imm) : -1;
    Py_XDECREF(imm);
    if (allow < 0) {
        Py_DECREF(buf);
        return NULL;
    }
    Py_buffer *v = heap_keep_view(self, buf);
    Py_DECREF(buf);
    if (!v)
        return NULL;
    int rc = spc_heap_add_item(self->heap, id, v->buf, (size_t)v->len, allow);
    if (rc < 0) {
        /* Nothing references the view: give it back. */
        PyBuffer_Release(v);
        self->n_views--;
        char detail[96];
        snprintf(detail, sizeof detail, "item ID %#llx", id);
        return spcpy_raise(rc, detail);
    }
    Py_RETURN_NONE;
}

/* Reads a Python sequence of ints into a new int64 array (None = variable). */
static int64_t *read_shape(PyObject *shape, size_t *n)
{
    PyObject *seq = PySequence_Fast(shape, "shape must be a sequence");
    if (!seq)
        return NULL;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    int64_t *out = PyMem_Calloc((size_t)len + 1, sizeof(*out));
    for (Py_ssize_t i = 0; out && i < len; i++) {
        PyObject *d = PySequence_Fast_GET_ITEM(seq, i);
        out[i] = d == Py_None ? SPC_DIM_VARIABLE : PyLong_AsLongLong(d);
        if (PyErr_Occurred()) {
            PyMem_Free(out);
            out = NULL;
        }
    }
    if (!out && !PyErr_Occurred())
        PyErr_NoMemory();
    Py_DECREF(seq);
    *n = (size_t)len;
    return out;
}

/* add_descriptor(descriptor): the descriptor's _c_descriptor() gives (id, name,
 * description, shape, format list or None, numpy descr text or None, fortran_order). */
static PyObject *heap_add_descriptor(SpcpyHeap *self, PyObject *descriptor)
{
    if (heap_ready(self) < 0)
        return NULL;
    PyObject *t = PyObject_CallMethod(descriptor, "_c_descriptor", NULL);
    if (!t)
        return NULL;
    unsigned long long id;
    const char *name, *description, *dtype;
    PyObject *shape, *format;
    int fortran;
    PyObject *ret = NULL;
    int64_t *dims = NULL;
    struct spc_format_field *fields = NULL;
    PyObject *fseq = NULL;
    if (!PyArg_ParseTuple(t, "KssOOzp", &id, &name, &description, &shape, &format, &dtype,
                          &fortran))
        goto out;
    struct spc_descriptor d = {.id = id, .name = name, .description = description,
                               .dtype = dtype, .fortran_order = fortran};
    if (!(dims = read_shape(shape, &d.n_dims)))
        goto out;
    d.shape = dims;
    if (format != Py_None) {
        if (!(fseq = PySequence_Fast(format, "format must be a list of (type, bits)")))
            goto out;
        Py_ssize_t nf = PySequence_Fast_GET_SIZE(fseq);
        fields = PyMem_Calloc((size_t)nf + 1, sizeof(*fields));
        if (!fields) {
            PyErr_NoMemory();
            goto out;
        }
        for (Py_ssize_t i = 0; i < nf; i++) {
            const char *code;
            unsigned int bits;
            if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fseq, i), "sI", &code, &bits))
                goto out;
            fields[i].type = code[0];
            fields[i].bits = bits;
        }
        d.format = fields;
        d.n_format = (size_t)nf;
    }
    int rc = spc_heap_add_descriptor(self->heap, &d);
    if (rc < 0) {
        char detail[160];
        snprintf(detail, sizeof detail, "descriptor %s (ID %#llx)", name, id);
        spcpy_raise(rc, detail);
        goto out;
    }
    ret = Py_None;
    Py_INCREF(ret);
out:
    PyMem_Free(dims);
    PyMem_Free(fields);
    Py_XDECREF(fseq);
    Py_DECREF(t);
    return ret;
}

static PyObject *heap_ctrl(SpcpyHeap *self, int (*fn)(struct spc_heap *))
{
    if (heap_ready(self) < 0)
        return NULL;
    int rc = fn(self->heap);
    if (rc < 0)
        return spcpy_raise(rc, NULL);
    Py_RETURN_NONE;
}

static PyObject *heap_add_start(SpcpyHeap *self, PyObject *unused)
{
    (void)unused;
    return heap_ctrl(self, spc_heap_add_start);
}

static PyObject *heap_add_end(SpcpyHeap *self, PyObject *unused)
{
    (void)unused;
    return heap_ctrl(self, spc_heap_add_end);
}

static PyObject *heap_get_repeat(SpcpyHeap *self, void *c)
{
    (void)c;
    if (!self->heap)
        Py_RETURN_FALSE;
    return PyBool_FromLong(spc_heap_repeat_pointers(self->heap));
}

static int heap_set_repeat(SpcpyHeap *self, PyObject *v, void *c)
{
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete repeat_pointers");
        return -1;
    }
    int on = PyObject_IsTrue(v);
    if (on < 0 || heap_ready(self) < 0)
        return -1;
    spc_heap_set_repeat_pointers(self->heap, on);
    return 0;
}

static PyObject *heap_get_flavour(SpcpyHeap *self, void *c)
{
    (void)c;
    PyObject *f = self->flavour ? self->flavour : Py_None;
    Py_INCREF(f);
    return f;
}

static PyObject *heap_get_n_items(SpcpyHeap *self, void *c)
{
    (void)c;
    return PyLong_FromSize_t(self->heap ? spc_heap_n_items(self->heap) : 0);
}

static PyMethodDef heap_methods[] = {
    {"add_item", (PyCFunction)heap_add_item, METH_O,
     "add_item(item): reference the item's value (item.to_buffer()) in the heap"},
    {"add_descriptor", (PyCFunction)heap_add_descriptor, METH_O,
     "add_descriptor(descriptor): add the descriptor (item 5)"},
    {"add_start", (PyCFunction)heap_add_start, METH_NOARGS, "add a start-of-stream item"},
    {"add_end", (PyCFunction)heap_add_end, METH_NOARGS, "add an end-of-stream item"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef heap_getset[] = {
    {"repeat_pointers", (getter)heap_get_repeat, (setter)heap_set_repeat,
     "repeat all item pointers in every packet", NULL},
    {"flavour", (getter)heap_get_flavour, NULL, "the heap's flavour", NULL},
    {"n_items", (getter)heap_get_n_items, NULL, "number of items in the heap", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject SpcpyHeap_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "speadcast._speadcast.Heap",
    .tp_basicsize = sizeof(SpcpyHeap),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Heap(flavour): items and descriptors to send; item memory is referenced",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)heap_init,
    .tp_dealloc = (destructor)heap_dealloc,
    .tp_methods = heap_methods,
    .tp_getset = heap_getset,
    .tp_weaklistoffset = offsetof(SpcpyHeap, weakreflist),
};

/* ------------------------------------------------------------ PacketGenerator */

typedef struct {
    PyObject_HEAD
    SpcpyHeap *heap;         /* busy while the walk is open */
    struct spc_packetizer pz;
    uint8_t *scratch;
    bool open;
} SpcpyPacketGenerator;

static void pg_close(SpcpyPacketGenerator *self)
{
    if (self->open) {
        self->open = false;
        self->heap->busy--;
    }
}

static int pg_init(SpcpyPacketGenerator *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"heap", "cnt", "max_packet_size", NULL};
    PyObject *heap;
    unsigned long long cnt;
    Py_ssize_t mps;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!Kn", kwlist, &SpcpyHeap_Type, &heap, &cnt,
                                     &mps))
        return -1;
    if (self->heap) {
        PyErr_SetString(PyExc_RuntimeError, "PacketGenerator already initialised");
        return -1;
    }
    SpcpyHeap *h = (SpcpyHeap *)heap;
    if (!h->heap) {
        PyErr_SetString(PyExc_RuntimeError, "Heap.__init__ was not called");
        return -1;
    }
    if (mps < 0) {
        PyErr_SetString(PyExc_ValueError, "packet size is too small");
        return -1;
    }
    int rc = spc_packetizer_init(&self->pz, h->heap, cnt, (size_t)mps);
    if (rc < 0) {
        spcpy_raise(rc, NULL);
        return -1;
    }
    self->scratch = PyMem_Malloc(spc_packet_scratch_size((size_t)mps));
    if (!self->scratch) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(heap);
    self->heap = h;
    h->busy++;
    self->open = true;
    return 0;
}

static void pg_dealloc(SpcpyPacketGenerator *self)
{
    if (self->heap) {
        pg_close(self);
        Py_DECREF(self->heap);
    }
    PyMem_Free(self->scratch);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *pg_next(SpcpyPacketGenerator *self)
{
    if (!self->open)
        return NULL;
    struct spc_packet pkt;
    if (spc_packetizer_next(&self->pz, self->scratch, &pkt) != 1) {
        pg_close(self);
        return NULL; /* StopIteration */
    }
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)pkt.size);
    if (b)
        spc_packet_write(&pkt, PyBytes_AS_STRING(b), pkt.size);
    return b;
}

static PyObject *pg_len(SpcpyPacketGenerator *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSize_t(self->heap ? spc_packetizer_count(&self->pz) : 0);
}

static PyMethodDef pg_methods[] = {
    {"count", (PyCFunction)pg_len, METH_NOARGS, "number of packets of the whole walk"},
    {NULL, NULL, 0, NULL}};

PyTypeObject SpcpyPacketGenerator_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "speadcast._speadcast.PacketGenerator",
    .tp_basicsize = sizeof(SpcpyPacketGenerator),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "PacketGenerator(heap, cnt, max_packet_size): iterates the heap's packets as bytes",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)pg_init,
    .tp_dealloc = (destructor)pg_dealloc,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)pg_next,
    .tp_methods = pg_methods,
};
