/* SPDX-License-Identifier: MIT */
/*
 * dref.c - mempool.DRef: an immutable, hashable, picklable 16-byte object
 * reference. str() is the library's text form ("off:gen" in hex) and
 * DRef.parse() reads it back; DRef(off, gen) builds one from its numbers.
 */
#include "mpy.h"

#include <errno.h>

PyObject *mpy_dref_new(mempool_dref r)
{
    MpyDRef *d = PyObject_New(MpyDRef, &MpyDRef_Type);

    if (d)
        d->r = r;
    return (PyObject *)d;
}

/* A DRef argument, or its text form. */
int mpy_dref_arg(PyObject *o, mempool_dref *out)
{
    if (Py_IS_TYPE(o, &MpyDRef_Type) ||
        PyObject_TypeCheck(o, &MpyDRef_Type)) {
        *out = ((MpyDRef *)o)->r;
        return 0;
    }
    if (PyUnicode_Check(o)) {
        const char *s = PyUnicode_AsUTF8(o);
        int rc;

        if (!s)
            return -1;
        if ((rc = mempool_dref_parse(s, out)) < 0) {
            PyErr_Format(PyExc_ValueError, "not a DRef: %R", o);
            return -1;
        }
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "expected a mempool.DRef, not %.100s",
                 Py_TYPE(o)->tp_name);
    return -1;
}

static PyObject *dref_new(PyTypeObject *t, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"off", "gen", NULL};
    unsigned long long off, gen;
    MpyDRef *d;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "KK:DRef", kwlist, &off, &gen))
        return NULL;
    d = (MpyDRef *)t->tp_alloc(t, 0);
    if (d) {
        d->r.off = off;
        d->r.gen = gen;
    }
    return (PyObject *)d;
}

static PyObject *dref_str(MpyDRef *d)
{
    char buf[MEMPOOL_DREF_STRLEN];

    if (mempool_dref_format(d->r, buf, sizeof buf) < 0)
        return mpy_raise(-EINVAL, NULL);
    return PyUnicode_FromString(buf);
}

static PyObject *dref_repr(MpyDRef *d)
{
    char buf[MEMPOOL_DREF_STRLEN];

    mempool_dref_format(d->r, buf, sizeof buf);
    return PyUnicode_FromFormat("DRef('%s')", buf);
}

static Py_hash_t dref_hash(MpyDRef *d)
{
    /* what names the object: the data hint (mempool.h) masked away */
    uint64_t h = (d->r.off & MEMPOOL_DREF_ENTRY_BITS) * 0x9E3779B97F4A7C15ull ^
                 d->r.gen;
    Py_hash_t v = (Py_hash_t)(h >> 1);

    return v == -1 ? -2 : v;
}

static PyObject *dref_richcmp(PyObject *a, PyObject *b, int op)
{
    mempool_dref x, y;
    int lt, eq;

    if (!PyObject_TypeCheck(a, &MpyDRef_Type) ||
        !PyObject_TypeCheck(b, &MpyDRef_Type))
        Py_RETURN_NOTIMPLEMENTED;
    x = ((MpyDRef *)a)->r;
    y = ((MpyDRef *)b)->r;
    x.off &= MEMPOOL_DREF_ENTRY_BITS;          /* hints ignored (mempool.h) */
    y.off &= MEMPOOL_DREF_ENTRY_BITS;
    eq = x.off == y.off && x.gen == y.gen;
    lt = x.off < y.off || (x.off == y.off && x.gen < y.gen);
    switch (op) {
    case Py_EQ: return PyBool_FromLong(eq);
    case Py_NE: return PyBool_FromLong(!eq);
    case Py_LT: return PyBool_FromLong(lt);
    case Py_LE: return PyBool_FromLong(lt || eq);
    case Py_GT: return PyBool_FromLong(!lt && !eq);
    default: return PyBool_FromLong(!lt);
    }
}

static PyObject *dref_parse(PyObject *cls, PyObject *s)
{
    mempool_dref r;

    (void)cls;
    if (!PyUnicode_Check(s)) {
        PyErr_SetString(PyExc_TypeError, "DRef.parse() takes a str");
        return NULL;
    }
    if (mpy_dref_arg(s, &r) < 0)
        return NULL;
    return mpy_dref_new(r);
}

static PyObject *dref_reduce(MpyDRef *d, PyObject *unused)
{
    (void)unused;
    return Py_BuildValue("(O(KK))", (PyObject *)Py_TYPE(d),
                         (unsigned long long)d->r.off,
                         (unsigned long long)d->r.gen);
}

static PyObject *dref_get_off(MpyDRef *d, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(d->r.off);
}

static PyObject *dref_get_gen(MpyDRef *d, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(d->r.gen);
}

static PyGetSetDef dref_getset[] = {
    {"off", (getter)dref_get_off, NULL, "arena offset of the table entry",
     NULL},
    {"gen", (getter)dref_get_gen, NULL, "generation and pool tag", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMethodDef dref_methods[] = {
    {"parse", dref_parse, METH_O | METH_CLASS,
     "parse(s)\n--\n\nRead the text form written by str(ref)."},
    {"__reduce__", (PyCFunction)dref_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

PyTypeObject MpyDRef_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mempool.DRef",
    .tp_basicsize = sizeof(MpyDRef),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "DRef(off, gen)\n--\n\nA reference to an object in a pool: "
              "16 plain bytes any process attached to the pool can use. "
              "Immutable, hashable, picklable; str() gives the text form "
              "and DRef.parse() reads it. Carries no reference count.",
    .tp_new = dref_new,
    .tp_repr = (reprfunc)dref_repr,
    .tp_str = (reprfunc)dref_str,
    .tp_hash = (hashfunc)dref_hash,
    .tp_richcompare = dref_richcmp,
    .tp_methods = dref_methods,
    .tp_getset = dref_getset,
};
