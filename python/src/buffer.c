/* SPDX-License-Identifier: MIT */
/*
 * buffer.c - the handle object (_Handle) and mempool.Buffer, a pinned,
 * read-only window on an object's bytes.
 *
 * A Buffer holds one library pin. It is released when the Buffer is
 * collected, or at release() / the end of a `with` block once no
 * buffer-protocol export (memoryview, ndarray made from it) is left; until
 * then the bytes cannot be freed or reused. Exports are always read-only:
 * a request for a writable buffer raises BufferError, so no Python code can
 * write into a published object through it.
 *
 * A Buffer made before fork() belongs to the parent's handle: the child
 * never releases it (that is the parent's pin) and the mapping stays valid
 * in the child as long as the object lives.
 */
#include "mpy.h"

/* ---- _Handle ------------------------------------------------------------ */

static void conn_dealloc(MpyConn *c)
{
    mempool *h = c->h;

    c->h = NULL;
    Py_CLEAR(c->name);
    if (h) {
        /* In a forked child this only frees the child's memory. */
        Py_BEGIN_ALLOW_THREADS
        mempool_close(h);
        Py_END_ALLOW_THREADS
    }
    Py_TYPE(c)->tp_free((PyObject *)c);
}

PyTypeObject MpyConn_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mempool._Handle",
    .tp_basicsize = sizeof(MpyConn),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One process's open handle on a pool (internal).",
    .tp_dealloc = (destructor)conn_dealloc,
};

/* ---- Buffer ------------------------------------------------------------- */

MpyBuffer *mpy_buffer_new(MpyConn *conn, const mempool_view *v,
                          mempool_dref r)
{
    MpyBuffer *b = PyObject_New(MpyBuffer, &MpyBuffer_Type);

    if (!b)
        return NULL;
    b->conn = (MpyConn *)Py_NewRef(conn);
    b->v = *v;
    b->r = r;
    b->exports = 0;
    b->pinned = 1;
    b->release_asked = 0;
    b->ref_owned = 0;
    b->weaklist = NULL;
    return b;
}

/* Drop the pin (once). The handle of another fork generation is the
 * parent's: leave its pin alone. */
void mpy_buffer_release(MpyBuffer *b)
{
    if (!b->pinned)
        return;
    b->pinned = 0;
    if (b->conn && b->conn->h && b->conn->gen == mpy_fork_gen) {
        mempool_release(b->conn->h, &b->v);
        if (b->ref_owned)
            mempool_unref(b->conn->h, b->r);
    }
}

static void buffer_dealloc(MpyBuffer *b)
{
    if (b->weaklist)
        PyObject_ClearWeakRefs((PyObject *)b);
    mpy_buffer_release(b);
    Py_CLEAR(b->conn);
    PyObject_Free(b);
}

static int buffer_getbuffer(MpyBuffer *b, Py_buffer *view, int flags)
{
    if (!b->pinned || b->release_asked) {
        PyErr_SetString(PyExc_ValueError, "mempool.Buffer was released");
        return -1;
    }
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError,
                        "mempool objects are immutable: read-only buffer");
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)b, (void *)b->v.data,
                          (Py_ssize_t)b->v.len, 1, flags) < 0)
        return -1;
    b->exports++;
    return 0;
}

static void buffer_releasebuffer(MpyBuffer *b, Py_buffer *view)
{
    (void)view;
    if (--b->exports == 0 && b->release_asked)
        mpy_buffer_release(b);
}

static PyBufferProcs buffer_as_buffer = {
    (getbufferproc)buffer_getbuffer, (releasebufferproc)buffer_releasebuffer};

static Py_ssize_t buffer_len(MpyBuffer *b)
{
    return b->pinned ? (Py_ssize_t)b->v.len : 0;
}

static PySequenceMethods buffer_as_sequence = {.sq_length =
                                                   (lenfunc)buffer_len};

static PyObject *buffer_release_m(MpyBuffer *b, PyObject *unused)
{
    (void)unused;
    b->release_asked = 1;
    if (b->exports == 0)
        mpy_buffer_release(b);
    Py_RETURN_NONE;
}

static PyObject *buffer_enter(MpyBuffer *b, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(b);
}

static PyObject *buffer_exit(MpyBuffer *b, PyObject *args)
{
    (void)args;
    return buffer_release_m(b, NULL);
}

static PyObject *buffer_bytes(MpyBuffer *b, PyObject *unused)
{
    (void)unused;
    if (!b->pinned) {
        PyErr_SetString(PyExc_ValueError, "mempool.Buffer was released");
        return NULL;
    }
    return PyBytes_FromStringAndSize(b->v.data, (Py_ssize_t)b->v.len);
}

static PyObject *buffer_repr(MpyBuffer *b)
{
    char ref[MEMPOOL_DREF_STRLEN];

    mempool_dref_format(b->r, ref, sizeof ref);
    return PyUnicode_FromFormat("<mempool.Buffer %s %llu bytes%s%s>", ref,
                                (unsigned long long)b->v.len,
                                (b->v.flags & MEMPOOL_VIEW_DISK) ? " on disk"
                                                                 : "",
                                b->pinned ? "" : " released");
}

static PyObject *buffer_get_ref(MpyBuffer *b, void *c)
{
    (void)c;
    return mpy_dref_new(b->r);
}

static PyObject *buffer_get_type(MpyBuffer *b, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLong(b->v.type);
}

static PyObject *buffer_get_on_disk(MpyBuffer *b, void *c)
{
    (void)c;
    return PyBool_FromLong((b->v.flags & MEMPOOL_VIEW_DISK) != 0);
}

static PyObject *buffer_get_released(MpyBuffer *b, void *c)
{
    (void)c;
    return PyBool_FromLong(!b->pinned);
}

static PyObject *buffer_get_address(MpyBuffer *b, void *c)
{
    (void)c;
    return PyLong_FromVoidPtr((void *)b->v.data);
}

static PyObject *buffer_get_owns_ref(MpyBuffer *b, void *c)
{
    (void)c;
    return PyBool_FromLong(b->ref_owned && b->pinned);
}

static PyObject *buffer_get_pool_name(MpyBuffer *b, void *c)
{
    (void)c;
    return Py_NewRef(b->conn && b->conn->name ? b->conn->name : Py_None);
}

static PyGetSetDef buffer_getset[] = {
    {"owns_ref", (getter)buffer_get_owns_ref, NULL,
     "True if this buffer holds a reference it drops with the pin", NULL},
    {"pool_name", (getter)buffer_get_pool_name, NULL, "the pool's name",
     NULL},
    {"ref", (getter)buffer_get_ref, NULL, "the object's DRef", NULL},
    {"type", (getter)buffer_get_type, NULL, "the object's codec type id",
     NULL},
    {"on_disk", (getter)buffer_get_on_disk, NULL,
     "True if the bytes are a mapped spill or saved file", NULL},
    {"released", (getter)buffer_get_released, NULL, "the pin was dropped",
     NULL},
    {"address", (getter)buffer_get_address, NULL,
     "address of the first byte in this process", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMethodDef buffer_methods[] = {
    {"release", (PyCFunction)buffer_release_m, METH_NOARGS,
     "release()\n--\n\nDrop the pin now, or as soon as the last memoryview "
     "or array made from this buffer is gone."},
    {"tobytes", (PyCFunction)buffer_bytes, METH_NOARGS,
     "tobytes()\n--\n\nA copy of the bytes."},
    {"__bytes__", (PyCFunction)buffer_bytes, METH_NOARGS, NULL},
    {"__enter__", (PyCFunction)buffer_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)buffer_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

PyTypeObject MpyBuffer_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mempool.Buffer",
    .tp_basicsize = sizeof(MpyBuffer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A pinned, read-only view of a pool object's bytes (buffer "
              "protocol, len(), bytes()). The pin is dropped when it is "
              "collected or released.",
    .tp_dealloc = (destructor)buffer_dealloc,
    .tp_repr = (reprfunc)buffer_repr,
    .tp_as_buffer = &buffer_as_buffer,
    .tp_as_sequence = &buffer_as_sequence,
    .tp_methods = buffer_methods,
    .tp_getset = buffer_getset,
    .tp_weaklistoffset = offsetof(MpyBuffer, weaklist),
};
