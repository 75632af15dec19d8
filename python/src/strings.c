/* SPDX-License-Identifier: MIT */
/*
 * strings.c - mempool.Strings, a read-only Sequence over a decoded STRINGS
 * object (bytes or None per element, sliced out of the pinned blob), and
 * the builder that turns a Python sequence of str/bytes/None into the
 * codec's offsets/blob/validity columns for put.
 *
 * str elements are stored as UTF-8; None (and float NaN, pandas' missing
 * marker in object columns) is a missing element, which is not b"".
 */
#include "mpy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

PyObject *mpy_strings_new(PyObject *owner, const mempool_strings *s)
{
    MpyStrings *o = PyObject_New(MpyStrings, &MpyStrings_Type);

    if (!o)
        return NULL;
    o->owner = Py_NewRef(owner);
    o->s = *s;
    return (PyObject *)o;
}

static void strings_dealloc(MpyStrings *o)
{
    Py_CLEAR(o->owner);
    PyObject_Free(o);
}

static Py_ssize_t strings_len(MpyStrings *o)
{
    return (Py_ssize_t)o->s.n;
}

static PyObject *item(MpyStrings *o, uint64_t i, const char *encoding)
{
    uint64_t len;
    const uint8_t *p = mempool_strings_at(&o->s, i, &len);

    if (!p)
        Py_RETURN_NONE;
    if (encoding)
        return PyUnicode_Decode((const char *)p, (Py_ssize_t)len, encoding,
                                "strict");
    return PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)len);
}

static PyObject *strings_item(MpyStrings *o, Py_ssize_t i)
{
    if (i < 0 || (uint64_t)i >= o->s.n) {
        PyErr_SetString(PyExc_IndexError, "Strings index out of range");
        return NULL;
    }
    return item(o, (uint64_t)i, NULL);
}

static PyObject *to_list(MpyStrings *o, Py_ssize_t start, Py_ssize_t step,
                         Py_ssize_t n, const char *encoding)
{
    PyObject *l = PyList_New(n);

    if (!l)
        return NULL;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *x = item(o, (uint64_t)(start + k * step), encoding);
        if (!x) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, k, x);
    }
    return l;
}

static PyObject *strings_subscript(MpyStrings *o, PyObject *key)
{
    Py_ssize_t start, stop, step, n;

    if (PyIndex_Check(key)) {
        Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred())
            return NULL;
        if (i < 0)
            i += (Py_ssize_t)o->s.n;
        return strings_item(o, i);
    }
    if (!PySlice_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "Strings indices are ints or slices");
        return NULL;
    }
    if (PySlice_Unpack(key, &start, &stop, &step) < 0)
        return NULL;
    n = PySlice_AdjustIndices((Py_ssize_t)o->s.n, &start, &stop, step);
    return to_list(o, start, step, n, NULL);
}

static PyObject *strings_to_list(MpyStrings *o, PyObject *args,
                                 PyObject *kw)
{
    static char *kwlist[] = {"encoding", NULL};
    const char *enc = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|z:to_list", kwlist, &enc))
        return NULL;
    return to_list(o, 0, 1, (Py_ssize_t)o->s.n, enc);
}

static PyObject *strings_repr(MpyStrings *o)
{
    PyObject *head = to_list(o, 0, 1, o->s.n > 5 ? 5 : (Py_ssize_t)o->s.n,
                             NULL), *r;

    if (!head)
        return NULL;
    r = PyUnicode_FromFormat("<mempool.Strings n=%zd %R%s>",
                             (Py_ssize_t)o->s.n, head,
                             o->s.n > 5 ? " ..." : "");
    Py_DECREF(head);
    return r;
}

static PyObject *strings_get_missing(MpyStrings *o, void *c)
{
    uint64_t k = 0;

    (void)c;
    for (uint64_t i = 0; o->s.validity && i < o->s.n; i++)
        k += mempool_strings_missing(&o->s, i);
    return PyLong_FromUnsignedLongLong(k);
}

static PyMethodDef strings_methods[] = {
    {"to_list", (PyCFunction)(void (*)(void))strings_to_list,
     METH_VARARGS | METH_KEYWORDS,
     "to_list(encoding=None)\n--\n\nThe elements as a list: bytes (or str "
     "decoded with *encoding*), None for missing ones."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef strings_getset[] = {
    {"missing", (getter)strings_get_missing, NULL, "count of None elements",
     NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PySequenceMethods strings_as_sequence = {
    .sq_length = (lenfunc)strings_len, .sq_item = (ssizeargfunc)strings_item};
static PyMappingMethods strings_as_mapping = {
    .mp_length = (lenfunc)strings_len,
    .mp_subscript = (binaryfunc)strings_subscript};

PyTypeObject MpyStrings_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mempool.Strings",
    .tp_basicsize = sizeof(MpyStrings),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_SEQUENCE,
    .tp_doc = "A read-only sequence of bytes (or None for missing elements) "
              "stored in the pool; elements are read from the pinned object "
              "on access. .to_list(encoding=None) converts all of them.",
    .tp_dealloc = (destructor)strings_dealloc,
    .tp_repr = (reprfunc)strings_repr,
    .tp_as_sequence = &strings_as_sequence,
    .tp_as_mapping = &strings_as_mapping,
    .tp_methods = strings_methods,
    .tp_getset = strings_getset,
};

/* ---- builder -------------------------------------------------------------- */

static int is_missing(PyObject *x)
{
    return x == Py_None || (PyFloat_Check(x) && isnan(PyFloat_AS_DOUBLE(x)));
}

/* The bytes of element @p x: UTF-8 of a str, the bytes of a bytes-like. */
static int elem_bytes(PyObject *x, const char **p, Py_ssize_t *len)
{
    if (PyUnicode_Check(x)) {
        *p = PyUnicode_AsUTF8AndSize(x, len);
        return *p ? 0 : -1;
    }
    if (PyBytes_Check(x)) {
        *p = PyBytes_AS_STRING(x);
        *len = PyBytes_GET_SIZE(x);
        return 0;
    }
    if (PyByteArray_Check(x)) {
        *p = PyByteArray_AS_STRING(x);
        *len = PyByteArray_GET_SIZE(x);
        return 0;
    }
    PyErr_Format(PyExc_TypeError,
                 "string elements must be str, bytes or None, not %.100s",
                 Py_TYPE(x)->tp_name);
    return -1;
}

int mpy_strbuild_init(mpy_strbuild *b, PyObject *seq)
{
    PyObject *fast = PySequence_Fast(seq, "expected a sequence of strings");
    Py_ssize_t n, len;
    uint64_t total = 0;
    const char *p;
    int any_missing = 0;

    memset(b, 0, sizeof *b);
    if (!fast)
        return -1;
    n = PySequence_Fast_GET_SIZE(fast);
    b->offsets = malloc(((size_t)n + 1) * sizeof *b->offsets);
    b->validity = calloc(((size_t)n + 7) / 8 + 1, 1);
    if (!b->offsets || !b->validity)
        goto nomem;
    b->offsets[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *x = PySequence_Fast_GET_ITEM(fast, i);
        if (is_missing(x)) {
            any_missing = 1;
        } else {
            if (elem_bytes(x, &p, &len) < 0)
                goto fail;
            total += (uint64_t)len;
            b->validity[i / 8] |= (uint8_t)(1u << (i % 8));
        }
        b->offsets[i + 1] = total;
    }
    if (!(b->blob = malloc(total ? total : 1)))
        goto nomem;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *x = PySequence_Fast_GET_ITEM(fast, i);
        if (!is_missing(x) && elem_bytes(x, &p, &len) == 0)
            memcpy(b->blob + b->offsets[i], p, (size_t)len);
    }
    Py_DECREF(fast);
    b->s.n = (uint64_t)n;
    b->s.offsets = b->offsets;
    b->s.blob = b->blob;
    b->s.validity = any_missing ? b->validity : NULL;
    return 0;
nomem:
    PyErr_NoMemory();
fail:
    Py_DECREF(fast);
    mpy_strbuild_free(b);
    return -1;
}

void mpy_strbuild_free(mpy_strbuild *b)
{
    free(b->offsets);
    free(b->blob);
    free(b->validity);
    memset(b, 0, sizeof *b);
}
