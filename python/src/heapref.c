/* HeapReference and HeapReferenceList (spead2.send's batching types).
 *
 * A HeapReferenceList is a root (a tuple of HeapReference) or a slice of a root. The
 * root converts itself once per stream into an spc_heap_list (validated once, sent many
 * times, sliced for free); those lists are freed only with the root, so a send running
 * without the GIL never sees its list go. */
#include "spcpy.h"

#include <structmember.h>

static int href_init(SpcpyHeapReference *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"heap", "cnt", "substream_index", "rate", NULL};
    PyObject *heap;
    long long cnt = -1;
    long long sub = 0;
    double rate = -1.0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|$LLd", kwlist, &SpcpyHeap_Type, &heap, &cnt,
                                     &sub, &rate))
        return -1;
    if (self->heap) {
        /* Sends in flight may hold this reference: its heap never changes. */
        PyErr_SetString(PyExc_RuntimeError, "HeapReference already initialised");
        return -1;
    }
    if (!((SpcpyHeap *)heap)->heap) {
        PyErr_SetString(PyExc_RuntimeError, "Heap.__init__ was not called");
        return -1;
    }
    if (sub < 0 || sub > UINT32_MAX) {
        PyErr_Format(PyExc_ValueError, "substream_index %lld is out of range", sub);
        return -1;
    }
    Py_INCREF(heap);
    self->heap = (SpcpyHeap *)heap;
    self->cnt = cnt < 0 ? -1 : cnt;
    self->substream_index = (unsigned int)sub;
    self->rate = rate;
    return 0;
}

static void href_dealloc(SpcpyHeapReference *self)
{
    Py_XDECREF(self->heap);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef href_members[] = {
    {"heap", T_OBJECT_EX, offsetof(SpcpyHeapReference, heap), READONLY, "the heap"},
    {"cnt", T_LONGLONG, offsetof(SpcpyHeapReference, cnt), 0, "heap cnt, negative = automatic"},
    {"substream_index", T_UINT, offsetof(SpcpyHeapReference, substream_index), 0, "substream"},
    {"rate", T_DOUBLE, offsetof(SpcpyHeapReference, rate), 0,
     "bytes/s; negative = the stream's rate, 0 = unlimited"},
    {NULL, 0, 0, 0, NULL}};

PyTypeObject SpcpyHeapReference_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "speadcast._speadcast.HeapReference",
    .tp_basicsize = sizeof(SpcpyHeapReference),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "HeapReference(heap, *, cnt=-1, substream_index=0, rate=-1.0)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)href_init,
    .tp_dealloc = (destructor)href_dealloc,
    .tp_members = href_members,
};

/* A new HeapReference with r's fields (the same heap). */
static PyObject *href_copy(const SpcpyHeapReference *r)
{
    SpcpyHeapReference *c =
        (SpcpyHeapReference *)SpcpyHeapReference_Type.tp_alloc(&SpcpyHeapReference_Type, 0);
    if (!c)
        return NULL;
    Py_INCREF(r->heap);
    c->heap = r->heap;
    c->cnt = r->cnt;
    c->substream_index = r->substream_index;
    c->rate = r->rate;
    return (PyObject *)c;
}

/* ------------------------------------------------------------ HeapReferenceList */

static SpcpyHeapReference *hrl_at(SpcpyHeapReferenceList *l, Py_ssize_t i)
{
    return (SpcpyHeapReference *)PyTuple_GET_ITEM(l->root->refs, l->first + i);
}

static int hrl_init(SpcpyHeapReferenceList *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"heaps", NULL};
    PyObject *heaps;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O", kwlist, &heaps))
        return -1;
    if (self->root) {
        PyErr_SetString(PyExc_RuntimeError, "HeapReferenceList already initialised");
        return -1;
    }
    PyObject *given = PySequence_Tuple(heaps);
    if (!given)
        return -1;
    /* A copy of each reference, as spead2 copies them: changing a HeapReference later
     * does not change the list. */
    PyObject *t = PyTuple_New(PyTuple_GET_SIZE(given));
    for (Py_ssize_t i = 0; t && i < PyTuple_GET_SIZE(given); i++) {
        PyObject *r = PyTuple_GET_ITEM(given, i);
        PyObject *c = NULL;
        if (!PyObject_TypeCheck(r, &SpcpyHeapReference_Type))
            PyErr_Format(PyExc_TypeError, "heaps[%zd] is not a HeapReference", i);
        else
            c = href_copy((SpcpyHeapReference *)r);
        if (!c)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, i, c);
    }
    Py_DECREF(given);
    if (!t)
        return -1;
    self->root = self;
    self->refs = t;
    self->first = 0;
    self->count = PyTuple_GET_SIZE(t);
    return 0;
}

static void hrl_dealloc(SpcpyHeapReferenceList *self)
{
    if (self->root == self) {
        for (size_t i = 0; i < self->n_cache; i++) {
            spc_heap_list_destroy(self->cache[i].list);
            PyMem_Free(self->cache[i].n_items);
        }
        PyMem_Free(self->cache);
        Py_XDECREF(self->refs);
    } else if (self->root) {
        Py_DECREF(self->root);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t hrl_len(SpcpyHeapReferenceList *self)
{
    return self->root ? self->count : 0;
}

static PyObject *hrl_subscript(SpcpyHeapReferenceList *self, PyObject *key)
{
    if (!self->root) {
        PyErr_SetString(PyExc_RuntimeError, "HeapReferenceList.__init__ was not called");
        return NULL;
    }
    if (PySlice_Check(key)) {
        Py_ssize_t start, stop, step;
        if (PySlice_Unpack(key, &start, &stop, &step) < 0)
            return NULL;
        Py_ssize_t n = PySlice_AdjustIndices(self->count, &start, &stop, step);
        if (step != 1) {
            PyErr_SetString(PyExc_ValueError, "HeapReferenceList slices must have step 1");
            return NULL;
        }
        SpcpyHeapReferenceList *s =
            (SpcpyHeapReferenceList *)SpcpyHeapReferenceList_Type.tp_alloc(
                &SpcpyHeapReferenceList_Type, 0);
        if (!s)
            return NULL;
        Py_INCREF(self->root);
        s->root = self->root;
        s->first = self->first + start;
        s->count = n;
        return (PyObject *)s;
    }
    Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    if (i < 0)
        i += self->count;
    if (i < 0 || i >= self->count) {
        PyErr_SetString(PyExc_IndexError, "HeapReferenceList index out of range");
        return NULL;
    }
    return href_copy(hrl_at(self, i));
}

static SpcpyHeap *root_heap(SpcpyHeapReferenceList *root, Py_ssize_t i)
{
    return ((SpcpyHeapReference *)PyTuple_GET_ITEM(root->refs, i))->heap;
}

/* Whether every heap still has the item count it had when e was converted. */
static bool cache_current(SpcpyHeapReferenceList *root, const struct spcpy_list_cache *e)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(root->refs); i++)
        if (spc_heap_n_items(root_heap(root, i)->heap) != e->n_items[i])
            return false;
    return true;
}

struct spc_heap_list *spcpy_list_for(SpcpyHeapReferenceList *l, struct spc_stream *s,
                                     uint64_t serial)
{
    SpcpyHeapReferenceList *root = l->root;
    for (size_t i = root->n_cache; i-- > 0;)
        if (root->cache[i].stream_serial == serial) {
            if (cache_current(root, &root->cache[i]))
                return root->cache[i].list;
            break;
        }
    Py_ssize_t n = PyTuple_GET_SIZE(root->refs);
    if (n == 0) {
        spcpy_raise(-EINVAL, "send_heaps with an empty list");
        return NULL;
    }
    struct spc_heap_ref *refs = PyMem_Calloc((size_t)n, sizeof(*refs));
    size_t *counts = PyMem_Calloc((size_t)n, sizeof(*counts));
    struct spcpy_list_cache *grown =
        PyMem_Realloc(root->cache, (root->n_cache + 1) * sizeof(*grown));
    if (grown)
        root->cache = grown;
    if (!refs || !counts || !grown) {
        PyMem_Free(refs);
        PyMem_Free(counts);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        refs[i] = spcpy_ref_of((SpcpyHeapReference *)PyTuple_GET_ITEM(root->refs, i));
        counts[i] = spc_heap_n_items(root_heap(root, i)->heap);
    }
    struct spc_heap_list *list;
    int rc = spc_heap_list_create(&list, s, refs, (size_t)n);
    PyMem_Free(refs);
    if (rc < 0) {
        PyMem_Free(counts);
        char detail[256];
        spc_stream_last_error(s, detail, sizeof detail);
        spcpy_raise(rc, detail);
        return NULL;
    }
    root->cache[root->n_cache].stream_serial = serial;
    root->cache[root->n_cache].list = list;
    root->cache[root->n_cache].n_items = counts;
    root->n_cache++;
    return list;
}

void spcpy_list_busy(SpcpyHeapReferenceList *l, Py_ssize_t delta)
{
    for (Py_ssize_t i = 0; i < l->count; i++)
        hrl_at(l, i)->heap->busy += delta;
}

static PyMappingMethods hrl_mapping = {
    .mp_length = (lenfunc)hrl_len,
    .mp_subscript = (binaryfunc)hrl_subscript,
};

PyTypeObject SpcpyHeapReferenceList_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "speadcast._speadcast.HeapReferenceList",
    .tp_basicsize = sizeof(SpcpyHeapReferenceList),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "HeapReferenceList(heaps): a reusable, sliceable list of HeapReference",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)hrl_init,
    .tp_dealloc = (destructor)hrl_dealloc,
    .tp_as_mapping = &hrl_mapping,
};
