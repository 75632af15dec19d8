/* SPDX-License-Identifier: MIT */
/*
 * wrap.c - the Python object for a pinned object, by codec type: BYTES are
 * the Buffer itself, ARRAY a read-only ndarray whose .base is the Buffer,
 * STRINGS a mempool.Strings, TABLE a mempool.Table of those. Every result
 * keeps the Buffer (the pin) alive and nothing is copied. Decoding goes
 * through the library's codecs (mempool_decode), which check every offset.
 */
#include "mpy.h"

static PyObject *table_wrap(MpyBuffer *b, const mempool_table *t)
{
    PyObject *cols = PyList_New(0), *res;
    mempool_column c;
    int rc;

    if (!cols)
        return NULL;
    for (uint64_t i = 0; i < t->ncols; i++) {
        PyObject *col, *item;

        if ((rc = mempool_table_column(t, i, &c)) < 0) {
            Py_DECREF(cols);
            return mpy_raise(rc, "table column");
        }
        col = c.type == MEMPOOL_TYPE_STRINGS
                  ? mpy_strings_new((PyObject *)b, &c.strings)
                  : mpy_ndarray(&c.array, (PyObject *)b, 0);
        item = col ? Py_BuildValue("(s#N)", c.name, (Py_ssize_t)c.name_len,
                                   col)
                   : NULL;
        if (!item || PyList_Append(cols, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(cols);
            return NULL;
        }
        Py_DECREF(item);
    }
    if (!mpy_table_class)
        return Py_BuildValue("(NK)", cols, (unsigned long long)t->nrows);
    res = PyObject_CallFunction(mpy_table_class, "NKO", cols,
                                (unsigned long long)t->nrows, (PyObject *)b);
    return res;
}

PyObject *mpy_wrap(MpyBuffer *b)
{
    union {
        mempool_array a;
        mempool_strings s;
        mempool_table t;
    } u;
    PyObject *res = NULL;
    uint32_t type = b->v.type;
    int rc;

    if (type == MEMPOOL_TYPE_BYTES || type >= MEMPOOL_TYPE_USER ||
        type > MEMPOOL_TYPE_TABLE)
        return (PyObject *)b;
    if (type != MEMPOOL_TYPE_STRINGS) {
        rc = mpy_numpy();
        if (rc <= 0) {
            if (rc == 0)
                PyErr_SetString(PyExc_ImportError,
                                "numpy is needed to read array and table "
                                "objects (pool.view() gives the raw bytes)");
            Py_DECREF(b);
            return NULL;
        }
    }
    rc = mempool_decode(NULL, type, b->v.data, b->v.len, &u);
    if (rc < 0) {
        Py_DECREF(b);
        return mpy_raise(rc, "decode");
    }
    switch (type) {
    case MEMPOOL_TYPE_ARRAY: res = mpy_ndarray(&u.a, (PyObject *)b, 0); break;
    case MEMPOOL_TYPE_STRINGS: res = mpy_strings_new((PyObject *)b, &u.s); break;
    default: res = table_wrap(b, &u.t); break;
    }
    Py_DECREF(b);
    return res;
}
