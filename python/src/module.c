/* _speadcast module set-up: error mapping, constants and the transport catalogue. */
#include "spcpy.h"

#include <errno.h>

/* The errno an OSError carries for a project code that is a transport condition. */
static int os_errno_of(int code)
{
    switch (code) {
    case SPC_EQUEUE_FULL: return ENOBUFS;
    case SPC_ESTOPPED: return EPIPE;
    case SPC_ECLOSED: return ECONNRESET;
    case SPC_ENOTSUP: return EOPNOTSUPP;
    case SPC_EPLUGIN: return ENOENT;
    case SPC_EHEAP_CNT: return EINVAL; /* spead2: OSError EINVAL for a cnt too wide */
    default: return 0;
    }
}

PyObject *spcpy_error(int rc, const char *detail)
{
    int code = rc < 0 ? -rc : rc;
    char msg[1024];
    if (detail && *detail)
        snprintf(msg, sizeof msg, "%s: %s", spc_strerror(rc), detail);
    else
        snprintf(msg, sizeof msg, "%s", spc_strerror(rc));
    if (code == ENOMEM)
        return PyObject_CallFunction(PyExc_MemoryError, "s", msg);
    int os = code >= SPC_ERR_BASE ? os_errno_of(code) : code;
    bool value_error = (code >= SPC_ERR_BASE && os == 0) || code == EINVAL || code == ERANGE ||
                       code == EOVERFLOW;
    if (value_error)
        return PyObject_CallFunction(PyExc_ValueError, "s", msg);
    /* OSError(errno, text) picks the matching subclass (BrokenPipeError, ...). */
    return PyObject_CallFunction(PyExc_OSError, "is", os, msg);
}

PyObject *spcpy_raise(int rc, const char *detail)
{
    PyObject *e = spcpy_error(rc, detail);
    if (e) {
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
    }
    return NULL;
}

static PyObject *dict_str(const char *s)
{
    if (s)
        return PyUnicode_FromString(s);
    Py_RETURN_NONE;
}

/* plugins(plugin_path=None): every transport found, as speadcast-info lists them. */
static PyObject *py_plugins(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *kwlist[] = {"plugin_path", NULL};
    PyObject *path_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &path_obj))
        return NULL;
    const char **path = NULL;
    PyObject *seq = NULL;
    if (path_obj != Py_None) {
        seq = PySequence_Fast(path_obj, "plugin_path must be a list of directories");
        if (!seq)
            return NULL;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        path = PyMem_Calloc((size_t)n + 1, sizeof(*path));
        if (!path) {
            Py_DECREF(seq);
            return PyErr_NoMemory();
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            path[i] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i));
            if (!path[i]) {
                PyMem_Free(path);
                Py_DECREF(seq);
                return NULL;
            }
        }
    }
    struct spc_transport_info *list = NULL;
    size_t n = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = spc_transport_list((const char *const *)path, &list, &n);
    Py_END_ALLOW_THREADS
    PyMem_Free(path);
    Py_XDECREF(seq);
    if (rc < 0)
        return spcpy_raise(rc, "listing transports");
    PyObject *out = PyList_New(0);
    for (size_t i = 0; out && i < n; i++) {
        const struct spc_transport_info *t = &list[i];
        PyObject *name = dict_str(t->name), *p = dict_str(t->path), *v = dict_str(t->version),
                 *d = dict_str(t->description), *m = dict_str(t->message);
        PyObject *e = Py_BuildValue(
            "{s:N,s:N,s:N,s:N,s:N,s:i,s:s,s:(II),s:O,s:I,s:I}", "name", name, "path", p,
            "version", v, "description", d, "message", m, "status", t->status, "result",
            t->status == 0 ? "loaded" : t->status == -EEXIST ? "shadowed" : "failed", "abi",
            t->abi_major, t->abi_minor, "builtin", t->builtin ? Py_True : Py_False, "caps",
            (unsigned)t->caps, "max_substreams", (unsigned)t->max_substreams);
        if (!e || PyList_Append(out, e) < 0)
            Py_CLEAR(out);
        Py_XDECREF(e);
    }
    spc_transport_list_free(list, n);
    return out;
}

static PyObject *py_strerror(PyObject *self, PyObject *arg)
{
    (void)self;
    int code = PyLong_AsLong(arg);
    if (code == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(spc_strerror(code));
}

static PyMethodDef module_methods[] = {
    {"plugins", (PyCFunction)(void (*)(void))py_plugins, METH_VARARGS | METH_KEYWORDS,
     "plugins(plugin_path=None) -> list of dicts: every transport found"},
    {"strerror", py_strerror, METH_O, "strerror(code) -> text of a speadcast error code"},
    {"decode", (PyCFunction)(void (*)(void))spcpy_decode, METH_VARARGS | METH_KEYWORDS,
     "decode(data, bug_compat=0, max_heap_size=..., max_live_heaps=16) -> list of heap tuples"},
    {"parse_descriptor", (PyCFunction)(void (*)(void))spcpy_parse_descriptor,
     METH_VARARGS | METH_KEYWORDS,
     "parse_descriptor(data, bug_compat=0) -> (id, name, description, shape, format, dtype, "
     "fortran_order)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_speadcast",
                                        "C core of the speadcast package", -1, module_methods,
                                        NULL, NULL, NULL, NULL};

static int add_type(PyObject *m, PyTypeObject *t, const char *name)
{
    if (PyType_Ready(t) < 0)
        return -1;
    Py_INCREF(t);
    if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
        Py_DECREF(t);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__speadcast(void)
{
    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    if (add_type(m, &SpcpyHeap_Type, "Heap") < 0 ||
        add_type(m, &SpcpyPacketGenerator_Type, "PacketGenerator") < 0 ||
        add_type(m, &SpcpyHeapReference_Type, "HeapReference") < 0 ||
        add_type(m, &SpcpyHeapReferenceList_Type, "HeapReferenceList") < 0 ||
        add_type(m, &SpcpyStream_Type, "Stream") < 0 ||
        add_type(m, &SpcpyInprocQueue_Type, "InprocQueue") < 0 ||
        add_type(m, &SpcpyInprocReceiver_Type, "InprocReceiver") < 0)
        goto fail;
    struct {
        const char *name;
        long long value;
    } consts[] = {
        {"NULL_ID", SPC_ID_NULL}, {"HEAP_CNT_ID", SPC_ID_HEAP_CNT},
        {"HEAP_LENGTH_ID", SPC_ID_HEAP_SIZE}, {"PAYLOAD_OFFSET_ID", SPC_ID_HEAP_OFFSET},
        {"PAYLOAD_LENGTH_ID", SPC_ID_PAYLOAD_LENGTH}, {"DESCRIPTOR_ID", SPC_ID_DESCRIPTOR},
        {"STREAM_CTRL_ID", SPC_ID_STREAM_CTRL}, {"DESCRIPTOR_NAME_ID", SPC_ID_DESCRIPTOR_NAME},
        {"DESCRIPTOR_DESCRIPTION_ID", SPC_ID_DESCRIPTOR_DESCRIPTION},
        {"DESCRIPTOR_SHAPE_ID", SPC_ID_DESCRIPTOR_SHAPE},
        {"DESCRIPTOR_FORMAT_ID", SPC_ID_DESCRIPTOR_FORMAT},
        {"DESCRIPTOR_ID_ID", SPC_ID_DESCRIPTOR_ID},
        {"DESCRIPTOR_DTYPE_ID", SPC_ID_DESCRIPTOR_DTYPE},
        {"CTRL_STREAM_START", SPC_CTRL_START},
        {"CTRL_DESCRIPTOR_REISSUE", SPC_CTRL_DESCRIPTOR_REISSUE},
        {"CTRL_STREAM_STOP", SPC_CTRL_STOP}, {"CTRL_DESCRIPTOR_UPDATE", SPC_CTRL_DESCRIPTOR_UPDATE},
        {"BUG_COMPAT_DESCRIPTOR_WIDTHS", SPC_BUG_COMPAT_DESCRIPTOR_WIDTHS},
        {"BUG_COMPAT_SHAPE_BIT_1", SPC_BUG_COMPAT_SHAPE_BIT_1},
        {"BUG_COMPAT_SWAP_ENDIAN", SPC_BUG_COMPAT_SWAP_ENDIAN},
        {"BUG_COMPAT_PYSPEAD_0_5_2", SPC_BUG_COMPAT_PYSPEAD_0_5_2},
        {"MIN_PACKET_SIZE", SPC_MIN_PACKET_SIZE},
        {"MAX_PACKET_SIZE", SPC_STREAM_MAX_PACKET_SIZE},
        {"ERR_QUEUE_FULL", -SPC_EQUEUE_FULL},
    };
    for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++)
        if (PyModule_AddObject(m, consts[i].name, PyLong_FromLongLong(consts[i].value)) < 0)
            goto fail;
    if (PyModule_AddStringConstant(m, "library_version", SPC_VERSION_STRING) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
