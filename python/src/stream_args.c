/* Argument parsing of the per-send calls: one heap, or a group (a list of HeapReference
 * or a HeapReferenceList) with its keep-alive and busy accounting. */
#include "stream_internal.h"

/* ------------------------------------------------------------ argument parsing */

/* (heap, cnt=-1, substream_index=0, rate=-1.0), positional or keyword, parsed by hand
 * from a vectorcall: this runs once per heap sent, and the generic parser costs more
 * than the send itself. */
int spcpy_heap_arg(SpcpyStream *self, PyObject *const *args, Py_ssize_t nargs,
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
    if (spcpy_stream_ready(self) < 0)
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
    if (spcpy_stream_flavour_check(self, *heap) < 0)
        return -1;
    *ref = (struct spc_heap_ref){(*heap)->heap, cnt < 0 ? SPC_CNT_AUTO : (uint64_t)cnt,
                                 (uint32_t)sub, rate};
    return 0;
}

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

int spcpy_group_arg(SpcpyStream *self, PyObject *args, PyObject *kw, struct spcpy_group *g)
{
    static char *kwlist[] = {"heaps", "mode", NULL};
    PyObject *heaps;
    int mode = SPC_GROUP_ROUND_ROBIN;
    memset(g, 0, sizeof *g);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|i", kwlist, &heaps, &mode))
        return -1;
    if (spcpy_stream_ready(self) < 0)
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
        SpcpyHeapReference *first = (SpcpyHeapReference *)PyTuple_GET_ITEM(
            g->hrl->root->refs, g->hrl->first);
        if (spcpy_stream_flavour_check(self, first->heap) < 0)
            return -1;
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
    PyObject *first = PyTuple_GET_ITEM(t, 0);
    if (PyObject_TypeCheck(first, &SpcpyHeapReference_Type) &&
        spcpy_stream_flavour_check(self, ((SpcpyHeapReference *)first)->heap) < 0) {
        Py_DECREF(t);
        return -1;
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

void spcpy_group_busy(struct spcpy_group *g, Py_ssize_t delta)
{
    if (g->hrl) {
        spcpy_list_busy(g->hrl, delta);
        return;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(g->keep); i++)
        ((SpcpyHeapReference *)PyTuple_GET_ITEM(g->keep, i))->heap->busy += delta;
}

int spcpy_group_send(SpcpyStream *self, struct spcpy_group *g, spc_send_callback cb, void *user)
{
    if (g->hrl)
        return spc_stream_send_list(self->s, g->list, (size_t)g->hrl->first, g->n,
                                    (enum spc_group_mode)g->mode, cb, user);
    return spc_stream_send_heaps(self->s, g->refs, g->n, (enum spc_group_mode)g->mode, cb, user);
}

void spcpy_group_free(struct spcpy_group *g)
{
    PyMem_Free(g->refs);
    Py_XDECREF(g->keep);
}
