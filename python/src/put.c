/* SPDX-License-Identifier: MIT */
/*
 * put.c - Pool.put(): bytes-likes become BYTES objects, numpy arrays ARRAY
 * objects, lists/tuples and numpy string/object arrays STRINGS objects,
 * through the library's codecs (mempool_put_obj), which reserve, encode in
 * place and publish: one copy into the arena. DataFrames and dicts of
 * columns go through Pool._put_other() (mempool/_pool.py), which calls
 * _put_table() here. Copies of more than PUT_NOGIL bytes run without the
 * GIL.
 */
#include "mpy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PUT_NOGIL (64u * 1024u)

static int set_obj(mempool *h, uint32_t type, const void *obj, uint64_t bytes,
                   uint32_t flags, mempool_dref *out)
{
    mempool_put_options o = {0, type, flags};
    int rc;

    if (bytes >= PUT_NOGIL) {
        Py_BEGIN_ALLOW_THREADS
        rc = mempool_put_obj(h, type, obj, &o, out);
        Py_END_ALLOW_THREADS
    } else {
        rc = mempool_put_obj(h, type, obj, &o, out);
    }
    return rc < 0 ? (mpy_raise(rc, NULL), -1) : 0;
}

static int put_buffer(mempool *h, PyObject *obj, uint32_t flags,
                      mempool_dref *out)
{
    Py_buffer view;
    mempool_bytes b;
    void *copy = NULL;
    int rc;

    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) {
        /* Not contiguous: gather it first. */
        PyErr_Clear();
        if (PyObject_GetBuffer(obj, &view, PyBUF_FULL_RO) < 0)
            return -1;
        if (!(copy = malloc(view.len ? (size_t)view.len : 1))) {
            PyBuffer_Release(&view);
            PyErr_NoMemory();
            return -1;
        }
        if (PyBuffer_ToContiguous(copy, &view, view.len, 'C') < 0) {
            free(copy);
            PyBuffer_Release(&view);
            return -1;
        }
    }
    b.data = copy ? copy : view.buf;
    b.len = (uint64_t)view.len;
    rc = set_obj(h, MEMPOOL_TYPE_BYTES, &b, b.len, flags, out);
    free(copy);
    PyBuffer_Release(&view);
    return rc;
}

static int put_strings(mempool *h, PyObject *seq, uint32_t flags,
                       mempool_dref *out)
{
    mpy_strbuild sb;
    int rc;

    if (mpy_strbuild_init(&sb, seq) < 0)
        return -1;
    rc = set_obj(h, MEMPOOL_TYPE_STRINGS, &sb.s,
                 sb.s.n ? sb.s.offsets[sb.s.n] : 0, flags, out);
    mpy_strbuild_free(&sb);
    return rc;
}

/* @p arr as an array the codec can take: native byte order and C or
 * Fortran contiguous (a new reference; a copy only when needed). */
static PyArrayObject *codec_ready(PyArrayObject *arr)
{
    PyArray_Descr *d = PyArray_DESCR(arr);

    if (PyArray_ISNOTSWAPPED(arr) &&
        (PyArray_IS_C_CONTIGUOUS(arr) || PyArray_IS_F_CONTIGUOUS(arr)) &&
        PyArray_ISALIGNED(arr))
        return (PyArrayObject *)Py_NewRef(arr);
    d = PyArray_ISNOTSWAPPED(arr) ? (Py_INCREF(d), d)
                                  : PyArray_DescrNewByteorder(d, NPY_NATIVE);
    if (!d)
        return NULL;
    return (PyArrayObject *)PyArray_FromArray(
        arr, d, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
}

int mpy_put_array_obj(mempool *h, PyObject *obj, uint32_t flags,
                      mempool_dref *out)
{
    PyArrayObject *arr;
    mempool_array a;
    int nd, rc;

    if (!(arr = codec_ready((PyArrayObject *)obj)))
        return -1;
    memset(&a, 0, sizeof a);
    nd = PyArray_NDIM(arr);
    if (nd > MEMPOOL_ARRAY_MAXDIM) {
        Py_DECREF(arr);
        PyErr_Format(PyExc_ValueError,
                     "mempool arrays have at most %d dimensions, not %d",
                     MEMPOOL_ARRAY_MAXDIM, nd);
        return -1;
    }
    if (mpy_dtype_to_mp(PyArray_DESCR(arr), &a.dtype, &a.elem_size) < 0) {
        Py_DECREF(arr);
        PyErr_SetString(PyExc_TypeError, "cannot store this dtype as an array");
        return -1;
    }
    a.ndim = (uint32_t)nd;
    for (int i = 0; i < nd; i++)
        a.shape[i] = (uint64_t)PyArray_DIM(arr, i);
    if (!PyArray_IS_C_CONTIGUOUS(arr))
        a.flags = MEMPOOL_ARRAY_COLMAJOR;
    a.data = PyArray_NBYTES(arr) ? PyArray_DATA(arr) : NULL;
    rc = set_obj(h, MEMPOOL_TYPE_ARRAY, &a, (uint64_t)PyArray_NBYTES(arr),
                 flags, out);
    Py_DECREF(arr);
    return rc;
}

static int put_ndarray(MpyPool *self, mempool *h, PyObject *obj,
                       uint32_t flags, mempool_dref *out)
{
    char kind = PyArray_DESCR((PyArrayObject *)obj)->kind;
    PyObject *list;
    int rc;

    if (kind != 'O' && kind != 'S' && kind != 'U')
        return mpy_put_array_obj(h, obj, flags, out);
    (void)self;
    if (PyArray_NDIM((PyArrayObject *)obj) != 1) {
        PyErr_SetString(PyExc_ValueError,
                        "string and object arrays must be 1-d to be stored");
        return -1;
    }
    if (!(list = PyObject_CallMethod(obj, "tolist", NULL)))
        return -1;
    rc = put_strings(h, list, flags, out);
    Py_DECREF(list);
    return rc;
}

static int is_ndarray(PyObject *obj)
{
    int rc;

    if (PyBytes_CheckExact(obj) || PyByteArray_CheckExact(obj) ||
        PyMemoryView_Check(obj) || PyList_Check(obj) || PyTuple_Check(obj))
        return 0;
    /* Only look at numpy when the object could be one of its arrays. */
    if (!PyObject_CheckBuffer(obj) && !PyObject_HasAttrString(obj, "__array_interface__"))
        return 0;
    if ((rc = mpy_numpy()) <= 0)
        return rc;
    return PyArray_Check(obj) || PyArray_IsScalar(obj, Generic);
}

/* put() of what the C side stores itself: 0, -1 with an exception set,
 * or 1 when @p obj is for Pool._put_other(). */
static int put_native(MpyPool *self, mempool *h, PyObject *obj,
                      uint32_t flags, mempool_dref *r)
{
    int rc;

    if ((rc = is_ndarray(obj)) < 0)
        return -1;
    if (rc && PyArray_IsScalar(obj, Generic)) {
        /* numpy scalars are stored as 0-d arrays */
        PyObject *arr = PyArray_FromScalar(obj, NULL);
        if (!arr)
            return -1;
        rc = put_ndarray(self, h, arr, flags, r);
        Py_DECREF(arr);
        return rc;
    }
    if (rc)
        return put_ndarray(self, h, obj, flags, r);
    if (PyObject_CheckBuffer(obj))
        return put_buffer(h, obj, flags, r);
    if (PyList_Check(obj) || PyTuple_Check(obj))
        return put_strings(h, obj, flags, r);
    return 1;
}

PyObject *mpy_pool_put(MpyPool *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"obj", "refcounted", NULL};
    PyObject *obj;
    int refcounted = 0, rc;
    mempool_dref r;
    MpyConn *c;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|p:put", kwlist, &obj,
                                     &refcounted))
        return NULL;
    if (!(c = mpy_pool_hold(self)))
        return NULL;
    rc = put_native(self, c->h, obj,
                    refcounted ? MEMPOOL_PUT_REFCOUNTED : 0, &r);
    Py_DECREF(c);
    if (rc > 0)
        return PyObject_CallMethod((PyObject *)self, "_put_other", "OO", obj,
                                   refcounted ? Py_True : Py_False);
    return rc < 0 ? NULL : mpy_dref_new(r);
}

PyObject *mpy_pool_put_strings(MpyPool *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"seq", "refcounted", NULL};
    PyObject *seq;
    int refcounted = 0;
    mempool_dref r;
    MpyConn *c;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|p:_put_strings", kwlist,
                                     &seq, &refcounted) ||
        !(c = mpy_pool_hold(self)))
        return NULL;
    rc = put_strings(c->h, seq, refcounted ? MEMPOOL_PUT_REFCOUNTED : 0, &r);
    Py_DECREF(c);
    return rc < 0 ? NULL : mpy_dref_new(r);
}

/* ---- tables ------------------------------------------------------------- */

typedef struct {
    mempool_column *cols;
    mpy_strbuild   *sb;
    PyObject      **keep; /* arrays made contiguous */
    Py_ssize_t      n;
} table_build;

static void table_free(table_build *t)
{
    for (Py_ssize_t i = 0; i < t->n; i++) {
        if (t->sb)
            mpy_strbuild_free(&t->sb[i]);
        if (t->keep)
            Py_XDECREF(t->keep[i]);
    }
    free(t->cols);
    free(t->sb);
    free(t->keep);
}

static int table_column(table_build *t, Py_ssize_t i, PyObject *name,
                        PyObject *col, uint64_t nrows, uint64_t *bytes)
{
    mempool_column *c = &t->cols[i];

    if (!(c->name = mpy_cstr(name)))
        return -1;
    if (mpy_numpy() > 0 && PyArray_Check(col) &&
        !strchr("OSU", PyArray_DESCR((PyArrayObject *)col)->kind)) {
        PyArrayObject *a = (PyArrayObject *)col;

        if (PyArray_NDIM(a) != 1 || (uint64_t)PyArray_DIM(a, 0) != nrows) {
            PyErr_Format(PyExc_ValueError,
                         "column %R is not 1-d with %llu rows", name,
                         (unsigned long long)nrows);
            return -1;
        }
        a = (PyArrayObject *)PyArray_FromArray(
            a, (Py_INCREF(PyArray_DESCR(a)), PyArray_DESCR(a)),
            NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_NOTSWAPPED);
        if (!a)
            return -1;
        t->keep[i] = (PyObject *)a;
        c->type = MEMPOOL_TYPE_ARRAY;
        if (mpy_dtype_to_mp(PyArray_DESCR(a), &c->array.dtype,
                            &c->array.elem_size) < 0) {
            PyErr_Format(PyExc_TypeError, "column %R: unsupported dtype", name);
            return -1;
        }
        c->array.ndim = 1;
        c->array.shape[0] = nrows;
        c->array.data = PyArray_NBYTES(a) ? PyArray_DATA(a) : NULL;
        *bytes += (uint64_t)PyArray_NBYTES(a);
        return 0;
    }
    if (mpy_numpy() > 0 && PyArray_Check(col)) {
        PyObject *l = PyObject_CallMethod(col, "tolist", NULL);
        int rc;
        if (!l)
            return -1;
        rc = mpy_strbuild_init(&t->sb[i], l);
        Py_DECREF(l);
        if (rc < 0)
            return -1;
    } else if (mpy_strbuild_init(&t->sb[i], col) < 0) {
        return -1;
    }
    if (t->sb[i].s.n != nrows) {
        PyErr_Format(PyExc_ValueError, "column %R has %llu rows, not %llu",
                     name, (unsigned long long)t->sb[i].s.n,
                     (unsigned long long)nrows);
        return -1;
    }
    c->type = MEMPOOL_TYPE_STRINGS;
    c->strings = t->sb[i].s;
    *bytes += nrows ? t->sb[i].s.offsets[nrows] : 0;
    return 0;
}

PyObject *mpy_pool_put_table(MpyPool *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"names", "columns", "nrows", "refcounted", NULL};
    PyObject *names, *cols;
    unsigned long long nrows;
    int refcounted = 0, rc = -1;
    table_build t = {0};
    mempool_table tab;
    uint64_t bytes = 0;
    mempool_dref r;
    MpyConn *c;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O!K|p:_put_table", kwlist,
                                     &PyList_Type, &names, &PyList_Type, &cols,
                                     &nrows, &refcounted))
        return NULL;
    if (PyList_GET_SIZE(names) != PyList_GET_SIZE(cols)) {
        PyErr_SetString(PyExc_ValueError, "names and columns differ in length");
        return NULL;
    }
    if (!mpy_pool_conn(self))
        return NULL;
    t.n = PyList_GET_SIZE(names);
    t.cols = calloc((size_t)t.n + 1, sizeof *t.cols);
    t.sb = calloc((size_t)t.n + 1, sizeof *t.sb);
    t.keep = calloc((size_t)t.n + 1, sizeof *t.keep);
    if (!t.cols || !t.sb || !t.keep) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < t.n; i++) {
        PyObject *name = PyList_GET_ITEM(names, i);
        if (!PyUnicode_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "column names must be str");
            goto out;
        }
        if (table_column(&t, i, name, PyList_GET_ITEM(cols, i), nrows,
                         &bytes) < 0)
            goto out;
    }
    tab.nrows = nrows;
    tab.ncols = (uint64_t)t.n;
    tab.cols = t.cols;
    tab.obj = NULL;
    tab.obj_len = 0;
    /* Held from here: building the columns ran Python code. */
    if (!(c = mpy_pool_hold(self)))
        goto out;
    rc = set_obj(c->h, MEMPOOL_TYPE_TABLE, &tab, bytes,
                 refcounted ? MEMPOOL_PUT_REFCOUNTED : 0, &r);
    Py_DECREF(c);
out:
    table_free(&t);
    return rc < 0 ? NULL : mpy_dref_new(r);
}
