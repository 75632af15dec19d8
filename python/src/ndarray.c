/* SPDX-License-Identifier: MIT */
/*
 * ndarray.c - numpy arrays over pool memory and the dtype map between
 * numpy and the ARRAY codec.
 *
 * Codec dtypes map to numpy's integer, float and bool types; any other
 * fixed-size numpy dtype (float16, complex, datetime64, structured ...)
 * is stored as RECORD of its itemsize and comes back as a void dtype
 * ('V<n>') to .view() as the original. BITS (written by C producers)
 * come back unpacked to bool, which is a copy.
 */
#include "mpy.h"

#include <errno.h>

static const int npy_of_mp[] = {
    [MEMPOOL_DTYPE_INT8] = NPY_INT8,       [MEMPOOL_DTYPE_INT16] = NPY_INT16,
    [MEMPOOL_DTYPE_INT32] = NPY_INT32,     [MEMPOOL_DTYPE_INT64] = NPY_INT64,
    [MEMPOOL_DTYPE_UINT8] = NPY_UINT8,     [MEMPOOL_DTYPE_UINT16] = NPY_UINT16,
    [MEMPOOL_DTYPE_UINT32] = NPY_UINT32,   [MEMPOOL_DTYPE_UINT64] = NPY_UINT64,
    [MEMPOOL_DTYPE_FLOAT32] = NPY_FLOAT32, [MEMPOOL_DTYPE_FLOAT64] = NPY_FLOAT64,
    [MEMPOOL_DTYPE_BOOL] = NPY_BOOL,
};

/* The codec dtype of numpy dtype @p d (native byte order assumed). */
int mpy_dtype_to_mp(PyArray_Descr *d, uint32_t *dtype, uint64_t *elem)
{
    static const uint32_t ints[] = {0, MEMPOOL_DTYPE_INT8, MEMPOOL_DTYPE_INT16,
                                    0, MEMPOOL_DTYPE_INT32, 0, 0, 0,
                                    MEMPOOL_DTYPE_INT64};
    static const uint32_t uints[] = {0, MEMPOOL_DTYPE_UINT8,
                                     MEMPOOL_DTYPE_UINT16, 0,
                                     MEMPOOL_DTYPE_UINT32, 0, 0, 0,
                                     MEMPOOL_DTYPE_UINT64};
    int size = d->elsize;

    *elem = 0;
    *dtype = 0;
    if (PyDataType_REFCHK(d) || d->type_num == NPY_OBJECT)
        return -1;
    if (d->kind == 'i' && size <= 8)
        *dtype = ints[size];
    else if (d->kind == 'u' && size <= 8)
        *dtype = uints[size];
    else if (d->kind == 'f' && size == 4)
        *dtype = MEMPOOL_DTYPE_FLOAT32;
    else if (d->kind == 'f' && size == 8)
        *dtype = MEMPOOL_DTYPE_FLOAT64;
    else if (d->kind == 'b' && size == 1)
        *dtype = MEMPOOL_DTYPE_BOOL;
    if (!*dtype) {
        *dtype = MEMPOOL_DTYPE_RECORD;
        *elem = (uint64_t)size;
    }
    return 0;
}

static PyObject *unpack_bits(const mempool_array *a, PyObject *owner)
{
    npy_intp n = (npy_intp)((a->count + 7) / 8), dims[MEMPOOL_ARRAY_MAXDIM];
    PyObject *packed, *np, *bits, *res;

    packed = PyArray_New(&PyArray_Type, 1, &n, NPY_UINT8, NULL,
                         (void *)a->data, 0, 0, NULL);
    if (!packed)
        return NULL;
    if (PyArray_SetBaseObject((PyArrayObject *)packed, Py_NewRef(owner)) < 0) {
        Py_DECREF(packed);
        return NULL;
    }
    np = PyImport_ImportModule("numpy");
    bits = np ? PyObject_CallMethod(np, "unpackbits", "OOns", packed, Py_None,
                                    (Py_ssize_t)a->count, "little")
              : NULL;
    Py_XDECREF(np);
    Py_DECREF(packed);
    if (!bits)
        return NULL;
    for (uint32_t i = 0; i < a->ndim; i++)
        dims[i] = (npy_intp)a->shape[i];
    PyArray_Dims shape = {dims, (int)a->ndim};
    res = PyArray_Newshape((PyArrayObject *)bits, &shape,
                           (a->flags & MEMPOOL_ARRAY_COLMAJOR) ? NPY_FORTRANORDER
                                                               : NPY_CORDER);
    Py_DECREF(bits);
    if (res) {
        PyObject *b = PyObject_CallMethod(res, "astype", "s", "bool");
        Py_DECREF(res);
        res = b;
    }
    return res;
}

/* A numpy view of decoded array @p a whose base is @p owner (a new
 * reference is taken); read-only unless @p writable. */
PyObject *mpy_ndarray(const mempool_array *a, PyObject *owner, int writable)
{
    static char empty[64] __attribute__((aligned(64)));
    npy_intp dims[MEMPOOL_ARRAY_MAXDIM], strides[MEMPOOL_ARRAY_MAXDIM];
    PyArray_Descr *descr;
    PyObject *arr;
    npy_intp step;
    int nd = (int)a->ndim;

    if (a->dtype == MEMPOOL_DTYPE_BITS)
        return unpack_bits(a, owner);
    if (a->dtype == MEMPOOL_DTYPE_RECORD) {
        descr = PyArray_DescrNewFromType(NPY_VOID);
        if (descr)
            descr->elsize = (int)a->elem_size;
    } else if (a->dtype >= MEMPOOL_DTYPE_INT8 &&
               a->dtype <= MEMPOOL_DTYPE_BOOL) { /* NPY_BOOL is 0 */
        descr = PyArray_DescrFromType(npy_of_mp[a->dtype]);
    } else {
        return mpy_raise(MEMPOOL_ECORRUPT, "unknown dtype");
    }
    if (!descr)
        return NULL;
    step = descr->elsize;
    for (int i = 0; i < nd; i++)
        dims[i] = (npy_intp)a->shape[i];
    if (a->flags & MEMPOOL_ARRAY_COLMAJOR) {
        for (int i = 0; i < nd; i++) {
            strides[i] = step;
            step *= dims[i] ? dims[i] : 1;
        }
    } else {
        for (int i = nd - 1; i >= 0; i--) {
            strides[i] = step;
            step *= dims[i] ? dims[i] : 1;
        }
    }
    arr = PyArray_NewFromDescr(&PyArray_Type, descr, nd, dims, strides,
                               a->data ? (void *)a->data : empty,
                               NPY_ARRAY_ALIGNED |
                                   (writable ? NPY_ARRAY_WRITEABLE : 0),
                               NULL);
    if (!arr)
        return NULL;
    if (PyArray_SetBaseObject((PyArrayObject *)arr, Py_NewRef(owner)) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}
