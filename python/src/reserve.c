/* SPDX-License-Identifier: MIT */
/*
 * reserve.c - mempool.Reservation: memory in the arena written in place
 * and then published (pool.reserve(nbytes): raw bytes through .buffer;
 * pool.empty(shape, dtype): an ARRAY object whose elements are .array).
 *
 * In a with-block the object is published when the block succeeds and
 * aborted (its memory freed) when it raises; publish() / abort() do it by
 * hand, and a reservation collected unpublished is aborted. At publish the
 * reservation pins the new object for as long as it lives, so .array and
 * .buffer stay valid; .array turns read-only and .buffer is released (a
 * view made from them before publish must not be written afterwards).
 *
 * pool.empty() writes the ARRAY header itself, in the codec's documented
 * format version 1 (mempool.h "Encoded layout"), then checks it with the
 * library's decoder before handing out the data pointer.
 */
#include "mpy.h"

#include <errno.h>
#include <string.h>

enum { RES_RESERVED, RES_PUBLISHED, RES_ABORTED };

typedef struct {
    PyObject_HEAD
    MpyConn     *conn;
    mempool_dref r;
    void        *data;    /* whole object */
    size_t       len;
    void        *payload; /* bytes the user writes */
    size_t       payload_len;
    int          state;
    int          pinned;
    mempool_view pin;
    PyObject    *memview; /* .buffer, made on first use */
    PyObject    *array;   /* .array (empty()) */
    Py_ssize_t   exports;
} MpyReservation;

static MpyReservation *res_new(MpyPool *pool, size_t len, uint32_t type)
{
    mempool_put_options o = {0, type, 0};
    MpyReservation *res;
    MpyConn *c = mpy_pool_conn(pool);
    void *buf = NULL;
    int rc;

    if (!c)
        return NULL;
    res = PyObject_GC_New(MpyReservation, &MpyReservation_Type);
    if (!res)
        return NULL;
    res->conn = (MpyConn *)Py_NewRef(c);
    res->state = RES_ABORTED;
    res->pinned = 0;
    res->memview = res->array = NULL;
    res->exports = 0;
    PyObject_GC_Track(res);
    Py_BEGIN_ALLOW_THREADS
    rc = mempool_reserve(c->h, len, &o, &buf, &res->r);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        Py_DECREF(res);
        return (MpyReservation *)mpy_raise(rc, NULL);
    }
    res->state = RES_RESERVED;
    res->data = res->payload = buf;
    res->len = res->payload_len = len;
    return res;
}

static int live(MpyReservation *res)
{
    return res->conn->gen == mpy_fork_gen;
}

/* Drop our own memoryview; 0 if no other export of the memory is left. */
static int drop_memview(MpyReservation *res)
{
    if (res->memview) {
        PyObject *r = PyObject_CallMethod(res->memview, "release", NULL);
        if (!r)
            PyErr_Clear(); /* exported further */
        Py_XDECREF(r);
        Py_CLEAR(res->memview);
    }
    return res->exports == 0 ? 0 : -1;
}

static PyObject *res_publish(MpyReservation *res, PyObject *unused)
{
    int rc;

    (void)unused;
    if (res->state != RES_RESERVED) {
        PyErr_SetString(PyExc_ValueError, "reservation already finished");
        return NULL;
    }
    if (!live(res)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "reservation made before fork() in another process");
        return NULL;
    }
    drop_memview(res); /* views made from it: documented contract */
    if (res->array)
        PyArray_CLEARFLAGS((PyArrayObject *)res->array, NPY_ARRAY_WRITEABLE);
    if ((rc = mempool_publish(res->conn->h, res->r)) < 0)
        return mpy_raise(rc, NULL);
    res->state = RES_PUBLISHED;
    /* Keep the bytes our views point at alive, whatever happens to the
     * object from now on. */
    if (mempool_get(res->conn->h, res->r, &res->pin) == 0)
        res->pinned = 1;
    return mpy_dref_new(res->r);
}

static PyObject *res_abort(MpyReservation *res, PyObject *unused)
{
    int rc;

    (void)unused;
    if (res->state != RES_RESERVED)
        Py_RETURN_NONE;
    /* While someone can still write into the memory (a view of .buffer, a
     * reference to .array), freeing it now would let them scribble over
     * the next object: the abort then happens when the reservation is
     * collected. */
    if (drop_memview(res) < 0 || (res->array && Py_REFCNT(res->array) > 1))
        Py_RETURN_NONE;
    Py_CLEAR(res->array);
    res->state = RES_ABORTED;
    if (live(res) && (rc = mempool_abort(res->conn->h, res->r)) < 0)
        return mpy_raise(rc, NULL);
    Py_RETURN_NONE;
}

static int res_traverse(MpyReservation *res, visitproc visit, void *arg)
{
    Py_VISIT(res->memview);
    Py_VISIT(res->array);
    Py_VISIT(res->conn);
    return 0;
}

static int res_clear(MpyReservation *res)
{
    Py_CLEAR(res->memview);
    Py_CLEAR(res->array);
    return 0;
}

static void res_dealloc(MpyReservation *res)
{
    PyObject_GC_UnTrack(res);
    res_clear(res);
    if (res->conn && live(res)) {
        if (res->state == RES_RESERVED)
            mempool_abort(res->conn->h, res->r);
        if (res->pinned)
            mempool_release(res->conn->h, &res->pin);
    }
    Py_CLEAR(res->conn);
    PyObject_GC_Del(res);
}

static int res_getbuffer(MpyReservation *res, Py_buffer *view, int flags)
{
    int writable = res->state == RES_RESERVED;

    if (res->state == RES_ABORTED ||
        (res->state == RES_PUBLISHED && !res->pinned)) {
        PyErr_SetString(PyExc_ValueError, "reservation was aborted");
        return -1;
    }
    if ((flags & PyBUF_WRITABLE) && !writable) {
        PyErr_SetString(PyExc_BufferError, "the object is published: "
                                           "read-only");
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)res, res->payload,
                          (Py_ssize_t)res->payload_len, !writable, flags) < 0)
        return -1;
    res->exports++;
    return 0;
}

static void res_releasebuffer(MpyReservation *res, Py_buffer *view)
{
    (void)view;
    res->exports--;
}

static PyBufferProcs res_as_buffer = {(getbufferproc)res_getbuffer,
                                      (releasebufferproc)res_releasebuffer};

static PyObject *res_get_buffer(MpyReservation *res, void *c)
{
    (void)c;
    if (res->state != RES_RESERVED) {
        PyErr_SetString(PyExc_ValueError,
                        "the buffer is only available before publish");
        return NULL;
    }
    if (!res->memview && !(res->memview = PyMemoryView_FromObject(
                               (PyObject *)res)))
        return NULL;
    return Py_NewRef(res->memview);
}

static PyObject *res_get_array(MpyReservation *res, void *c)
{
    (void)c;
    if (!res->array) {
        PyErr_SetString(PyExc_AttributeError,
                        "only pool.empty() reservations have an array");
        return NULL;
    }
    return Py_NewRef(res->array);
}

static PyObject *res_get_ref(MpyReservation *res, void *c)
{
    (void)c;
    return mpy_dref_new(res->r);
}

static PyObject *res_get_state(MpyReservation *res, void *c)
{
    static const char *names[] = {"reserved", "published", "aborted"};

    (void)c;
    return PyUnicode_FromString(names[res->state]);
}

static PyObject *res_enter(MpyReservation *res, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(res);
}

static PyObject *res_exit(MpyReservation *res, PyObject *args)
{
    PyObject *t = PyTuple_Size(args) > 0 ? PyTuple_GET_ITEM(args, 0) : Py_None;
    PyObject *r;

    if (t == Py_None) {
        if (res->state != RES_RESERVED)
            Py_RETURN_FALSE;
        r = res_publish(res, NULL);
    } else {
        r = res_abort(res, NULL);
        if (!r && t != Py_None)
            PyErr_Clear(); /* the block's exception is the one to see */
    }
    if (!r && t == Py_None)
        return NULL;
    Py_XDECREF(r);
    Py_RETURN_FALSE;
}

static PyObject *res_repr(MpyReservation *res)
{
    char ref[MEMPOOL_DREF_STRLEN];
    static const char *names[] = {"reserved", "published", "aborted"};

    mempool_dref_format(res->r, ref, sizeof ref);
    return PyUnicode_FromFormat("<mempool.Reservation %s %zu bytes %s>", ref,
                                res->payload_len, names[res->state]);
}

static PyGetSetDef res_getset[] = {
    {"buffer", (getter)res_get_buffer, NULL,
     "a writable memoryview of the reserved bytes (before publish)", NULL},
    {"array", (getter)res_get_array, NULL,
     "pool.empty(): the writable ndarray in the arena", NULL},
    {"ref", (getter)res_get_ref, NULL, "the object's DRef", NULL},
    {"state", (getter)res_get_state, NULL,
     "'reserved', 'published' or 'aborted'", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMethodDef res_methods[] = {
    {"publish", (PyCFunction)res_publish, METH_NOARGS,
     "publish()\n--\n\nMake the object visible and immutable; returns its "
     "DRef."},
    {"abort", (PyCFunction)res_abort, METH_NOARGS,
     "abort()\n--\n\nDrop the reservation and free its memory."},
    {"__enter__", (PyCFunction)res_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)res_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

PyTypeObject MpyReservation_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mempool.Reservation",
    .tp_basicsize = sizeof(MpyReservation),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)res_traverse,
    .tp_clear = (inquiry)res_clear,
    .tp_doc = "Memory reserved in the arena for a new object, written in "
              "place and then published (see Pool.reserve, Pool.empty).",
    .tp_dealloc = (destructor)res_dealloc,
    .tp_repr = (reprfunc)res_repr,
    .tp_as_buffer = &res_as_buffer,
    .tp_methods = res_methods,
    .tp_getset = res_getset,
};

PyObject *mpy_pool_reserve(MpyPool *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"nbytes", NULL};
    Py_ssize_t n;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "n:reserve", kwlist, &n))
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "nbytes must be >= 0");
        return NULL;
    }
    return (PyObject *)res_new(self, (size_t)n, MEMPOOL_TYPE_BYTES);
}

/* ---- pool.empty ---------------------------------------------------------- */

#define ARRAY_DATA_OFF 128u

static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

/* The ARRAY header (format version 1) for @p a with @p nbytes of data. */
static void array_header(uint8_t *d, const mempool_array *a, uint64_t count,
                         uint64_t nbytes)
{
    memset(d, 0, ARRAY_DATA_OFF);
    put32(d, 0x4A424F4Du);           /* "MOBJ" */
    d[4] = 1;                        /* format version (u16 LE) */
    d[6] = 1;                        /* little-endian */
    d[7] = 1;                        /* header units */
    put32(d + 8, MEMPOOL_TYPE_ARRAY);
    put64(d + 16, ARRAY_DATA_OFF + nbytes);
    put64(d + 24, count);
    put32(d + 32, a->flags);
    put32(d + 36, nbytes ? 2 : 1);
    put64(d + 40, (uint64_t)a->dtype | (uint64_t)a->ndim << 32);
    put64(d + 48, a->elem_size);
    put64(d + 56, nbytes ? ARRAY_DATA_OFF : 0);
    for (uint32_t i = 0; i < a->ndim; i++)
        put64(d + 64 + 8 * i, a->shape[i]);
}

PyObject *mpy_pool_empty(MpyPool *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"shape", "dtype", "order", NULL};
    PyArray_Dims dims = {NULL, 0};
    PyArray_Descr *descr = NULL;
    PyObject *order = NULL;
    MpyReservation *res = NULL;
    mempool_array a, dec;
    uint64_t count = 1, nbytes, esz;
    int fortran = 0, rc;

    if (mpy_numpy() <= 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ImportError, "pool.empty() needs numpy");
        return NULL;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|O&U:empty", kwlist,
                                     PyArray_IntpConverter, &dims,
                                     PyArray_DescrConverter, &descr, &order))
        return NULL;
    if (!descr)
        descr = PyArray_DescrFromType(NPY_DOUBLE);
    if (order) {
        const char *o = PyUnicode_AsUTF8(order);
        if (!o || (strcmp(o, "C") && strcmp(o, "F"))) {
            PyErr_SetString(PyExc_ValueError, "order must be 'C' or 'F'");
            goto out;
        }
        fortran = o[0] == 'F';
    }
    memset(&a, 0, sizeof a);
    if (dims.len > MEMPOOL_ARRAY_MAXDIM ||
        mpy_dtype_to_mp(descr, &a.dtype, &esz) < 0 ||
        !PyArray_ISNBO(descr->byteorder)) {
        PyErr_SetString(PyExc_ValueError,
                        "empty(): at most 8 dimensions of a native-order, "
                        "fixed-size dtype");
        goto out;
    }
    a.elem_size = (uint64_t)descr->elsize;
    a.ndim = (uint32_t)dims.len;
    a.flags = fortran ? MEMPOOL_ARRAY_COLMAJOR : 0;
    for (int i = 0; i < dims.len; i++) {
        if (dims.ptr[i] < 0) {
            PyErr_SetString(PyExc_ValueError, "negative dimensions");
            goto out;
        }
        a.shape[i] = (uint64_t)dims.ptr[i];
        if (__builtin_mul_overflow(count, a.shape[i], &count))
            goto big;
    }
    if (__builtin_mul_overflow(count, a.elem_size, &nbytes) ||
        nbytes > SIZE_MAX - ARRAY_DATA_OFF)
        goto big;
    if (!(res = res_new(self, ARRAY_DATA_OFF + nbytes, MEMPOOL_TYPE_ARRAY)))
        goto out;
    array_header(res->data, &a, count, nbytes);
    if ((rc = mempool_decode(NULL, MEMPOOL_TYPE_ARRAY, res->data, res->len,
                             &dec)) < 0) {
        mpy_raise(rc, "empty() header");
        Py_CLEAR(res);
        goto out;
    }
    res->payload = (uint8_t *)res->data + ARRAY_DATA_OFF;
    res->payload_len = nbytes;
    if (a.dtype == MEMPOOL_DTYPE_RECORD) {
        /* Keep the caller's dtype (float16, complex, structured ...). */
        npy_intp d[MEMPOOL_ARRAY_MAXDIM];
        for (uint32_t i = 0; i < a.ndim; i++)
            d[i] = (npy_intp)a.shape[i];
        Py_INCREF(descr);
        res->array = PyArray_NewFromDescr(&PyArray_Type, descr, (int)a.ndim,
                                          d, NULL, res->payload,
                                          NPY_ARRAY_WRITEABLE |
                                              (fortran ? NPY_ARRAY_F_CONTIGUOUS
                                                       : 0),
                                          NULL);
        if (res->array &&
            PyArray_SetBaseObject((PyArrayObject *)res->array,
                                  Py_NewRef(res)) < 0)
            Py_CLEAR(res->array);
    } else {
        res->array = mpy_ndarray(&dec, (PyObject *)res, 1);
    }
    if (!res->array)
        Py_CLEAR(res);
    goto out;
big:
    mpy_raise(-E2BIG, "empty()");
out:
    Py_XDECREF(descr);
    PyDimMem_FREE(dims.ptr);
    return (PyObject *)res;
}
