/* asyncio sends: each send's completion token (future, keep-alive) travels through the
 * stream's completion queue; the event loop drains it when the completion fd is
 * readable and resolves the futures there, with the GIL held. The writer thread never
 * touches Python. */
#include "stream_internal.h"

/* Interned method names and asyncio.InvalidStateError, set up on first attach. */
static PyObject *str_set_result, *str_set_exception, *invalid_state;

/* ------------------------------------------------------------ completions */

/* Adds delta to the busy count of the heaps a send keeps: a Heap, a HeapReferenceList
 * (slice) or a tuple of HeapReference. */
static void keep_busy(PyObject *keep, Py_ssize_t delta)
{
    if (SpcpyHeap_Check(keep))
        ((SpcpyHeap *)keep)->busy += delta;
    else if (PyObject_TypeCheck(keep, &SpcpyHeapReferenceList_Type))
        spcpy_list_busy((SpcpyHeapReferenceList *)keep, delta);
    else
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(keep); i++)
            ((SpcpyHeapReference *)PyTuple_GET_ITEM(keep, i))->heap->busy += delta;
}

/* Sets a future's result or exception. A future the caller cancelled refuses it: not an
 * error. Any other failure (its loop closed, no memory) is reported as unraisable, so one
 * bad future never stops a drain nor leaves an exception set. */
static void resolve(PyObject *fut, PyObject *method, PyObject *arg)
{
    PyObject *r = arg ? PyObject_CallMethodOneArg(fut, method, arg) : NULL;
    if (r) {
        Py_DECREF(r);
    } else if (invalid_state && PyErr_ExceptionMatches(invalid_state)) {
        PyErr_Clear();
    } else {
        PyErr_WriteUnraisable(fut);
    }
}

/* One drained completion: token is (future, keep-alive), now released. */
static void complete_token(SpcpyStream *self, PyObject *token, int status, uint64_t bytes)
{
    PyObject *fut = PyTuple_GET_ITEM(token, 0);
    keep_busy(PyTuple_GET_ITEM(token, 1), -1);
    self->async_done++;
    PyObject *arg = status < 0 ? spcpy_stream_err_obj(self, status)
                               : PyLong_FromUnsignedLongLong(bytes);
    resolve(fut, status < 0 ? str_set_exception : str_set_result, arg);
    Py_XDECREF(arg);
    Py_DECREF(token);
}

/* Resolves the async_flush futures whose sends have all completed. Their targets (the
 * async_sent count when each was made) increase along the list. */
static void resolve_flush_waiters(SpcpyStream *self)
{
    Py_ssize_t n = 0, len = PyList_GET_SIZE(self->flush_waiters);
    while (n < len) {
        PyObject *w = PyList_GET_ITEM(self->flush_waiters, n);
        if (PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(w, 0)) > self->async_done)
            break;
        n++;
    }
    if (n == 0)
        return;
    PyObject *done = PyList_GetSlice(self->flush_waiters, 0, n);
    if (!done || PyList_SetSlice(self->flush_waiters, 0, n, NULL) < 0) {
        Py_XDECREF(done);
        PyErr_WriteUnraisable((PyObject *)self);
        return;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        resolve(PyTuple_GET_ITEM(PyList_GET_ITEM(done, i), 1), str_set_result, Py_None);
    Py_DECREF(done);
}

void spcpy_stream_drain_all(SpcpyStream *self)
{
    struct spc_stream_completion c[64];
    int n;
    while ((n = spc_stream_drain(self->s, c, 64)) > 0) {
        for (int i = 0; i < n; i++)
            complete_token(self, (PyObject *)c[i].user, c[i].status, c[i].bytes);
        if (n < 64)
            break;
    }
    if (self->flush_waiters)
        resolve_flush_waiters(self);
}

PyObject *spcpy_stream_process_completions(SpcpyStream *self, PyObject *unused)
{
    (void)unused;
    if (!self->s || !self->create_future)
        Py_RETURN_NONE;
    spcpy_stream_drain_all(self);
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

static int send_token(SpcpyStream *self, const struct spc_heap_ref *ref, struct spcpy_group *g,
                      PyObject *token)
{
    if (ref)
        return spc_stream_send(self->s, ref, NULL, token);
    return spcpy_group_send(self, g, NULL, token);
}

/* Queues one heap (ref) or a group (g) with the token (future, keep) as the completion's
 * user pointer and returns the future. The accounting (busy heaps, async_sent) is done
 * before the send and undone if it is refused, so a drain on another thread while the
 * GIL is released never meets a completion it has not counted. A refused send sets the
 * future's exception at once, as spead2 does. */
static PyObject *async_send(SpcpyStream *self, PyObject *keep, const struct spc_heap_ref *ref,
                            struct spcpy_group *g)
{
    PyObject *fut = new_future(self);
    PyObject *token = fut ? PyTuple_Pack(2, fut, keep) : NULL;
    if (!token) {
        Py_XDECREF(fut);
        return NULL;
    }
    keep_busy(keep, 1);
    self->async_sent++;
    int rc;
    /* With on_full "fail" (the asyncio default) a send never waits: the GIL stays held. */
    if (self->blocking) {
        self->calls++;
        Py_BEGIN_ALLOW_THREADS
        rc = send_token(self, ref, g, token);
        Py_END_ALLOW_THREADS
        self->calls--;
    } else {
        rc = send_token(self, ref, g, token);
    }
    if (rc >= 0)
        return fut; /* the token belongs to the stream until drained */
    keep_busy(keep, -1);
    self->async_sent--;
    Py_DECREF(token);
    PyObject *e = spcpy_stream_err_obj(self, rc);
    PyObject *r = e ? PyObject_CallMethodOneArg(fut, str_set_exception, e) : NULL;
    Py_XDECREF(e);
    if (!r) {
        Py_DECREF(fut);
        return NULL;
    }
    Py_DECREF(r);
    return fut;
}

PyObject *spcpy_stream_async_send_heap(SpcpyStream *self, PyObject *const *args,
                                       Py_ssize_t nargs, PyObject *kwnames)
{
    SpcpyHeap *heap;
    struct spc_heap_ref ref;
    if (spcpy_heap_arg(self, args, nargs, kwnames, &heap, &ref) < 0)
        return NULL;
    return async_send(self, (PyObject *)heap, &ref, NULL);
}

PyObject *spcpy_stream_async_send_heaps(SpcpyStream *self, PyObject *args, PyObject *kw)
{
    struct spcpy_group g;
    if (spcpy_group_arg(self, args, kw, &g) < 0)
        return NULL;
    PyObject *fut = async_send(self, g.keep, NULL, &g);
    spcpy_group_free(&g);
    return fut;
}

PyObject *spcpy_stream_async_flush(SpcpyStream *self, PyObject *unused)
{
    (void)unused;
    if (spcpy_stream_ready(self) < 0)
        return NULL;
    PyObject *fut = new_future(self);
    if (!fut)
        return NULL;
    spcpy_stream_drain_all(self);
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
PyObject *spcpy_stream_attach_loop(SpcpyStream *self, PyObject *loop)
{
    if (spcpy_stream_ready(self) < 0)
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
